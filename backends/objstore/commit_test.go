package objstore

import (
	"fmt"
	"testing"
)

func TestParsePartName(t *testing.T) {
	for _, c := range []struct {
		name, job string
		ok        bool
	}{
		{"part-00000", "", true},
		{"part-123456", "", true},
		{"part-00007-job-1a2b", "job-1a2b", true},
		{"part-0000", "", false},
		{"part-00000.csv", "", false},
		{"part-00000-", "", false},
		{"part-00000-job.x", "", false},
		{"parts-00000", "", false},
		{"_SUCCESS", "", false},
	} {
		job, ok := ParsePartName(c.name)
		if job != c.job || ok != c.ok {
			t.Errorf("ParsePartName(%q) = %q, %v; want %q, %v", c.name, job, ok, c.job, c.ok)
		}
		if c.ok && c.name != "part-123456" {
			var i int
			if _, err := fmt.Sscan(c.name[5:10], &i); err == nil {
				if got := PartName(i, c.job); got != c.name {
					t.Errorf("PartName(%d, %q) = %q, want %q", i, c.job, got, c.name)
				}
			}
		}
	}
}
