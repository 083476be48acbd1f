// Package plot draws a probe run's figures with gonum.org/v1/plot, as PNG
// and SVG: the Gantt-like timeline of the thesis (one bar per invocation
// from in-function start to end, coloured by instance, client send and
// return marked), the concurrency curve over time, the histogram of
// in-function durations, and a comparison of several runs.
//
// Imports: probe, gonum.org/v1/plot and the standard library. It starts
// no goroutines.
package plot

import (
	"errors"
	"fmt"
	"hash/fnv"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/galeproject/gale/probe"
)

// Formats are the file formats every figure is written in.
var Formats = []string{"png", "svg"}

const (
	width  = 16 * vg.Centimeter
	height = 10 * vg.Centimeter
)

// Run writes the figures of one run into dir, created if needed, named
// PREFIX-timeline, PREFIX-concurrency and PREFIX-durations with each of
// Formats' extensions, and returns the paths written.
func Run(dir, prefix string, tr *probe.Trace) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	figs := []struct {
		name string
		make func(*probe.Trace) (*plot.Plot, error)
	}{{"timeline", Timeline}, {"concurrency", Concurrency}, {"durations", Durations}}
	var paths []string
	for _, f := range figs {
		p, err := f.make(tr)
		if err != nil {
			return paths, err
		}
		ps, err := save(p, filepath.Join(dir, prefix+"-"+f.name))
		paths = append(paths, ps...)
		if err != nil {
			return paths, err
		}
	}
	return paths, nil
}

func save(p *plot.Plot, base string) ([]string, error) {
	var paths []string
	for _, ext := range Formats {
		path := base + "." + ext
		if err := p.Save(width, height, path); err != nil {
			return paths, fmt.Errorf("plot: writing %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func title(tr *probe.Trace, what string) string {
	mem := ""
	if tr.MemoryMiB > 0 {
		mem = fmt.Sprintf(", %d MiB", tr.MemoryMiB)
	}
	return fmt.Sprintf("%s — %s: %d × %gs %s%s", what, tr.Backend, tr.Invocations, tr.DurationS, tr.Task, mem)
}

// instanceColor gives each instance a stable colour from its name.
func instanceColor(inst string) color.Color {
	h := fnv.New32a()
	h.Write([]byte(inst))
	return plotutilColor(int(h.Sum32()))
}

// palette is a set of distinguishable colours (Tableau 20).
var palette = []color.RGBA{
	{31, 119, 180, 255}, {174, 199, 232, 255}, {255, 127, 14, 255}, {255, 187, 120, 255},
	{44, 160, 44, 255}, {152, 223, 138, 255}, {214, 39, 40, 255}, {255, 152, 150, 255},
	{148, 103, 189, 255}, {197, 176, 213, 255}, {140, 86, 75, 255}, {196, 156, 148, 255},
	{227, 119, 194, 255}, {247, 182, 210, 255}, {127, 127, 127, 255}, {199, 199, 199, 255},
	{188, 189, 34, 255}, {219, 219, 141, 255}, {23, 190, 207, 255}, {158, 218, 229, 255},
}

func plotutilColor(i int) color.Color { return palette[(i%len(palette)+len(palette))%len(palette)] }

// timeline is a plotter drawing one horizontal bar per invocation.
type timeline struct {
	bars []bar
	// simple drops the send/return marks (large asynchronous runs).
	simple bool
}

type bar struct {
	y              float64
	start, end     float64 // in-function span; equal if it never ran
	sent, returned float64
	c              color.Color
	failed         bool
}

// Plot implements plot.Plotter.
func (t timeline) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	thick := vg.Length(1.5)
	if n := len(t.bars); n > 0 {
		thick = max(min(vg.Length(float64(c.Max.Y-c.Min.Y)/float64(n))*0.8, 4), 0.5)
	}
	mark := draw.LineStyle{Color: color.Gray{110}, Width: 0.4}
	for _, b := range t.bars {
		y := trY(b.y)
		if !t.simple {
			c.StrokeLine2(mark, trX(b.sent), y, trX(b.returned), y)
		}
		if b.failed {
			x := trX(b.returned)
			red := draw.LineStyle{Color: color.RGBA{200, 0, 0, 255}, Width: 1}
			c.StrokeLine2(red, x-2, y-2, x+2, y+2)
			c.StrokeLine2(red, x-2, y+2, x+2, y-2)
			continue
		}
		c.StrokeLine2(draw.LineStyle{Color: b.c, Width: thick}, trX(b.start), y, trX(b.end), y)
		if !t.simple {
			dot := draw.LineStyle{Color: color.Black, Width: 0.6}
			c.StrokeLine2(dot, trX(b.returned), y-thick, trX(b.returned), y+thick)
		}
	}
}

// DataRange implements plot.DataRanger.
func (t timeline) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin, ymax = 0, -1, float64(len(t.bars))
	for _, b := range t.bars {
		xmax = max(xmax, b.end, b.returned)
	}
	return
}

// Timeline returns the Gantt-like timeline: invocations sorted by start
// time, each a bar from in-function start to end coloured by instance; a
// thin grey line spans its client send to return, a black tick marks the
// return, and a red cross marks a failed invocation at its return.
func Timeline(tr *probe.Trace) (*plot.Plot, error) {
	origin := tr.Origin()
	recs := append([]probe.Record(nil), tr.Records...)
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if (a.Outcome == probe.OK) != (b.Outcome == probe.OK) {
			return a.Outcome == probe.OK
		}
		if a.Outcome == probe.OK {
			return a.Start.Before(b.Start)
		}
		return a.Returned.Before(b.Returned)
	})
	tl := timeline{simple: tr.Async}
	for i, r := range recs {
		if r.Outcome == probe.OutcomeCancelled && r.Returned.IsZero() {
			continue
		}
		b := bar{y: float64(i), sent: r.Sent.Sub(origin).Seconds(), returned: r.Returned.Sub(origin).Seconds(),
			failed: r.Outcome != probe.OK}
		if !b.failed {
			b.start, b.end = r.Start.Sub(origin).Seconds(), r.End.Sub(origin).Seconds()
			b.c = instanceColor(r.Instance)
		}
		tl.bars = append(tl.bars, b)
	}
	p := plot.New()
	p.Title.Text = title(tr, "Timeline")
	p.X.Label.Text = "time since the first request (s)"
	p.Y.Label.Text = "invocation (by start time)"
	p.Add(tl, plotter.NewGrid())
	return p, nil
}

// Concurrency returns the concurrency curve: invocations running and
// instances busy over time.
func Concurrency(tr *probe.Trace) (*plot.Plot, error) {
	origin := tr.Origin()
	p := plot.New()
	p.Title.Text = title(tr, "Concurrency")
	p.X.Label.Text = "time since the first request (s)"
	p.Y.Label.Text = "running"
	p.Legend.Top = true
	for i, by := range []bool{false, true} {
		l, err := stepLine(probe.ConcurrencyCurve(tr.Records, origin, by))
		if err != nil {
			return nil, err
		}
		l.Color = palette[2*i*3%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add([]string{"invocations", "instances busy"}[i], l)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

func stepLine(pts []probe.Point) (*plotter.Line, error) {
	xy := make(plotter.XYs, len(pts))
	for i, pt := range pts {
		xy[i] = plotter.XY{X: pt.T, Y: float64(pt.N)}
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	l.StepStyle = plotter.PostStep
	return l, nil
}

// Durations returns the histogram of in-function durations.
func Durations(tr *probe.Trace) (*plot.Plot, error) {
	var v plotter.Values
	for _, r := range tr.Records {
		if r.Outcome == probe.OK {
			v = append(v, r.End.Sub(r.Start).Seconds())
		}
	}
	p := plot.New()
	p.Title.Text = title(tr, "In-function duration")
	p.X.Label.Text = "duration (s)"
	p.Y.Label.Text = "invocations"
	if len(v) == 0 {
		return p, nil
	}
	bins := min(max(len(v)/5, 5), 40)
	h, err := plotter.NewHist(v, bins)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	h.FillColor = palette[0]
	p.Add(h)
	return p, nil
}

// Compare writes the comparison figure of several runs into dir as
// PREFIX.png and PREFIX.svg: the busy-instance curve of every run on one
// time axis, the figure companion of the thesis's Table 3.4.
func Compare(dir, prefix string, trs []*probe.Trace) ([]string, error) {
	if len(trs) == 0 {
		return nil, errors.New("plot: nothing to compare")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	p := plot.New()
	var names []string
	for _, tr := range trs {
		names = append(names, tr.Backend)
	}
	p.Title.Text = fmt.Sprintf("Instances busy — %d × %gs %s on %s", trs[0].Invocations, trs[0].DurationS, trs[0].Task, strings.Join(names, ", "))
	p.X.Label.Text = "time since the first request (s)"
	p.Y.Label.Text = "instances busy (parallel degree = peak)"
	p.Legend.Top = true
	for i, tr := range trs {
		l, err := stepLine(probe.ConcurrencyCurve(tr.Records, tr.Origin(), true))
		if err != nil {
			return nil, err
		}
		l.Color = palette[(2*i)%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(tr.Backend, l)
	}
	p.Add(plotter.NewGrid())
	return save(p, filepath.Join(dir, prefix))
}
