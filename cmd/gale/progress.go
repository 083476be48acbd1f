package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/galeproject/gale/engine"
)

// bars shows one progress bar per stage on a terminal: tasks done of
// total, running and failed attempts, records and bytes read.
type bars struct {
	p *mpb.Progress

	mu     sync.Mutex
	bars   map[int]*mpb.Bar
	stages []engine.StageReport
}

func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(32)), bars: map[int]*mpb.Bar{}}
}

// Update implements engine.Progress.
func (b *bars) Update(r *engine.Report) {
	snap := r.Snapshot()
	b.mu.Lock()
	b.stages = snap
	b.mu.Unlock()
	for _, s := range snap {
		if s.Start.IsZero() {
			continue
		}
		bar, ok := b.bars[s.ID]
		if !ok {
			id := s.ID
			bar = b.p.AddBar(int64(s.Tasks),
				mpb.PrependDecorators(decor.Name(fmt.Sprintf("stage %d %-24.24s", s.ID, s.Name)),
					decor.CountersNoUnit(" %d/%d")),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.detail(id) })))
			b.bars[s.ID] = bar
		}
		bar.SetCurrent(int64(s.Done))
	}
}

func (b *bars) detail(id int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id >= len(b.stages) {
		return ""
	}
	s := b.stages[id]
	m := s.Metrics
	return fmt.Sprintf(" running %d failed %d  %s records  %s read", s.Running, s.Failed,
		humanize.Comma(m.RecordsIn), humanize.IBytes(uint64(m.ObjectBytesRead+m.ShuffleBytesRead)))
}

// Finish implements engine.Progress: it completes or aborts the bars and
// waits for the renderer goroutine mpb owns.
func (b *bars) Finish(r *engine.Report, err error) {
	for _, bar := range b.bars {
		if err != nil {
			bar.Abort(false)
		} else {
			bar.SetTotal(-1, true)
		}
	}
	b.p.Wait()
}
