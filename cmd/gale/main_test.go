package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A command group refuses an unknown subcommand as a usage error naming
// the ones it has, and prints its help when given none.
func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	for _, c := range []struct {
		args []string
		says []string
	}{
		{[]string{"run", "wordcont"}, []string{`unknown command "wordcont" for "gale run"`, "wordcount", "sort"}},
		{[]string{"gen", "txt"}, []string{`"gale gen"`, "text", "records"}},
		{[]string{"dso", "server"}, []string{`"gale dso"`, "serve"}},
	} {
		root := newRootCmd()
		root.SetArgs(c.args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("gale %s: %v, want a usage error", strings.Join(c.args, " "), err)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("gale %s: %v does not say %s", strings.Join(c.args, " "), err, s)
			}
		}
	}
	root := newRootCmd()
	root.SetArgs([]string{"run"})
	var out bytes.Buffer
	root.SetOut(&out)
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("gale run: %v, output %q; want its help", err, out.String())
	}
}
