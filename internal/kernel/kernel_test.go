package kernel

import (
	"errors"
	"strings"
	"testing"
)

func TestFamilyBuildsNamedKernels(t *testing.T) {
	r := NewRegistry()
	builds := 0
	r.PutFamily("scale:", func(cfg string) (any, error) {
		builds++
		if cfg == "bad" {
			return nil, errors.New("bad config")
		}
		return "kernel " + cfg, nil
	})
	r.Put("scale:1", "registered 1")
	for _, c := range []struct{ name, want string }{
		{"scale:1", "registered 1"}, // an exact registration wins
		{"scale:7", "kernel 7"},
		{"scale:7", "kernel 7"}, // built once, then cached
	} {
		got, err := Lookup[string](r, c.name)
		if err != nil || got != c.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if builds != 1 {
		t.Errorf("%d builds, want 1", builds)
	}
	if _, err := Lookup[string](r, "scale:bad"); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Errorf("a failing build: %v", err)
	}
	if _, err := Lookup[string](r, "other:1"); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("an unknown name: %v", err)
	}
}
