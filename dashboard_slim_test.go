//go:build gale_slim

package gale_test

import (
	"context"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// TestSlimBuildRefusesWithUI checks that a slim build, which leaves the
// dashboard out, says so before the job starts.
func TestSlimBuildRefusesWithUI(t *testing.T) {
	p := gale.NewPipeline()
	gale.Collect(gale.FromSlice(p, []string{"a"}))
	_, err := gale.Run(context.Background(), p, gale.WithUI(""))
	if err == nil || !strings.Contains(err.Error(), "gale_slim") {
		t.Fatalf("err %v, want WithUI refused in a slim build", err)
	}
}
