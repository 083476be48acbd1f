package galerunner

import (
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"", 0}, {"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"65536", 64 << 10}} {
		got, err := parseMemory(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"lots", "0", "-1MiB", "99999999EiB"} {
		if _, err := parseMemory(bad); err == nil || !strings.Contains(err.Error(), "--gale_worker_memory") {
			t.Errorf("parseMemory(%q) = %v, want an error naming --gale_worker_memory", bad, err)
		}
	}
	if err := (Config{WorkerMemory: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "WorkerMemory") {
		t.Errorf("Validate of a negative WorkerMemory = %v", err)
	}
}
