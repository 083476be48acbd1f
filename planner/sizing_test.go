package planner

import (
	"strings"
	"testing"
	"time"
)

func TestChooseChunk(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		name  string
		in    ChunkInputs
		bytes int64
		why   string
	}{
		{"four waves per worker", ChunkInputs{InputBytes: 1024 * MiB, Files: 1, Concurrency: 8}, 32 * MiB, "= 32.0 MiB per task"},
		{"small input: the floor, fewer tasks than workers", ChunkInputs{InputBytes: 64 * MiB, Files: 1, Concurrency: 1000}, 4 * MiB, "raised to 4.0 MiB"},
		{"large input: the ceiling", ChunkInputs{InputBytes: 100 << 30, Files: 1, Concurrency: 10}, 64 * MiB, "capped at 64.0 MiB, the largest chunk"},
		{"a function's memory caps the chunk", ChunkInputs{InputBytes: 100 << 30, Files: 1, Concurrency: 10, MemoryBytes: 128 * MiB}, 32 * MiB, "a quarter of a function's 128.0 MiB"},
		{"memory below the floor wins over it", ChunkInputs{InputBytes: 1 << 30, Files: 1, Concurrency: 1000, MemoryBytes: 8 * MiB}, 2 * MiB, "capped at 2.0 MiB"},
		{"the probe raises the floor", ChunkInputs{InputBytes: 1 << 30, Files: 1, Concurrency: 1000, MinTaskDuration: 2 * time.Second, ReadBytesPerSecond: 10 * MiB}, 20 * MiB, "probe's shortest worthwhile task, 2s at 10.0 MiB/s"},
		{"the probe's floor stays within the ceiling", ChunkInputs{InputBytes: 1 << 30, Files: 1, Concurrency: 1000, MinTaskDuration: time.Minute}, 64 * MiB, "raised to 64.0 MiB"},
		{"a short probe floor is at least 1 MiB", ChunkInputs{InputBytes: 1 << 30, Files: 1, Concurrency: 1000, MinTaskDuration: time.Millisecond}, 1 * MiB, "raised to 1.0 MiB"},
		{"the task cap", ChunkInputs{InputBytes: 1 << 40, Files: 1, Concurrency: 1, MemoryBytes: 1 * MiB, MaxTasks: 1000}, (1<<40 + 998) / 999, "to stay within 1000 tasks"},
		{"empty input", ChunkInputs{Files: 1, Concurrency: 2}, 4 * MiB, "raised to 4.0 MiB"},
	} {
		got := ChooseChunk(c.in)
		if got.Bytes != c.bytes || !strings.Contains(got.Why, c.why) {
			t.Errorf("%s: chose %d bytes (%q), want %d bytes and a reason containing %q", c.name, got.Bytes, got.Why, c.bytes, c.why)
		}
		if want := max(int((c.in.InputBytes+got.Bytes-1)/got.Bytes), c.in.Files, 1); got.Tasks != want {
			t.Errorf("%s: %d tasks, want %d", c.name, got.Tasks, want)
		}
	}
}

// TestChooseChunkMatchesTheRuleItReplaced: without a probe or a backend
// memory, the choice is the rule gale used before the planner chose
// (four chunks per worker within [4 MiB, 64 MiB], at most a quarter of the
// worker memory, at least enough to stay within the task cap), so jobs that
// set nothing keep their task counts.
func TestChooseChunkMatchesTheRuleItReplaced(t *testing.T) {
	old := func(total int64, files, workers int, mem int64, maxTasks int) int64 {
		c := min(max(total/int64(4*workers), 4<<20), 64<<20)
		if mem > 0 {
			c = min(c, max(mem/4, 64<<10))
		}
		room := int64(maxTasks - files)
		m := int64(1)
		if room > 0 {
			m = (total + room - 1) / room
		}
		return max(c, m)
	}
	for _, total := range []int64{0, 1, 5 << 20, 64 << 20, 1 << 30, 100 << 30, 1 << 44} {
		for _, workers := range []int{1, 2, 8, 1000} {
			for _, mem := range []int64{0, 8 << 10, 1 << 20, 64 << 20, 512 << 20} {
				for _, files := range []int{1, 10} {
					got := ChooseChunk(ChunkInputs{InputBytes: total, Files: files, Concurrency: workers, MemoryBytes: mem, MaxTasks: 100_000}).Bytes
					if want := old(total, files, workers, mem, 100_000); got != want {
						t.Errorf("%d bytes, %d files, %d workers, memory %d: chose %d, the old rule %d", total, files, workers, mem, got, want)
					}
				}
			}
		}
	}
}
