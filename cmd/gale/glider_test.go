package main

import (
	"errors"
	"strings"
	"testing"
)

// An unknown or missing --role is a usage error listing the roles, before
// anything about the flags the roles need.
func TestGliderServeRole(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"glider", "serve", "--role", "bogus", "--secret", "0123456789abcdef"}, `unknown role "bogus": want meta, storage or active`},
		{[]string{"glider", "serve", "--secret", "0123456789abcdef"}, "--role is required: meta, storage or active"},
		{[]string{"glider", "serve", "--role", "storage", "--secret", "0123456789abcdef"}, "--role storage needs --meta"},
	} {
		_, _, err := runGale(t, c.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("gale %s: %v; want a usage error saying %q", strings.Join(c.args, " "), err, c.says)
		}
	}
}
