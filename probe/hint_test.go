package probe

import (
	"strings"
	"testing"
	"time"
)

func TestRecommendAndStageWarning(t *testing.T) {
	tests := []struct {
		name    string
		m       Metrics
		width   int
		conc    int
		minTask time.Duration
		warnHas []string // empty: no warning
	}{
		{"saturated wide enough", Metrics{Backend: "sim:aws", Invocations: 200, ParallelDegree: 200, ColdStartP50Ms: 300},
			150, 200, 2700 * time.Millisecond, nil},
		{"saturated, stage wider than probed", Metrics{Backend: "sim:aws", Invocations: 200, ParallelDegree: 200, ColdStartP50Ms: 300},
			500, 200, 2700 * time.Millisecond, []string{"--invocations 500"}},
		{"limited with rejects", Metrics{Backend: "sim:gcp", Invocations: 200, ParallelDegree: 77, Failures: 18, Rejected: 18, ColdStartP50Ms: 4500},
			200, 77, 40500 * time.Millisecond, []string{"at most 77", "3 waves", "limit concurrency to 77"}},
		{"limited, narrow stage", Metrics{Backend: "sim:azure", Invocations: 200, ParallelDegree: 18, ColdStartP50Ms: 2000},
			10, 18, 18 * time.Second, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Recommend(tc.m)
			if h.Concurrency != tc.conc || h.MinTaskDuration != tc.minTask {
				t.Errorf("Recommend = %+v; want concurrency %d, min task %v", h, tc.conc, tc.minTask)
			}
			w := h.StageWarning("map", tc.width)
			if len(tc.warnHas) == 0 && w != "" {
				t.Errorf("unexpected warning %q", w)
			}
			for _, s := range tc.warnHas {
				if !strings.Contains(w, s) {
					t.Errorf("warning %q lacks %q", w, s)
				}
			}
		})
	}
}
