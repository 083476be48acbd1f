// Command gliderplot draws the Glider benchmarks' figures for
// docs/benchmarks.md from the results files that bench/glider and
// bench/shuffle write:
//
//	go run ./bench/gliderplot [-glider bench/results/glider.json] [-shuffle bench/results/shuffle.json] [-out docs/img]
//
// It writes glider-jobs.png (glider / data shipping ratios of time, CPU,
// shuffle bytes and all bytes moved for every whole-job workload), glider-bandwidth.png (aggregate
// bandwidth of parallel action and file streams) and glider-reduce.png
// (bytes moved and stored by the reduce's strategies). It reads only the
// fields it plots, so the results files may carry more.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
	green  = color.RGBA{44, 160, 44, 255}
	gray   = color.RGBA{127, 127, 127, 255}
)

// gliderResults is the part of bench/glider's results file the figures use.
type gliderResults struct {
	CPUs     int `json:"cpus"`
	Parallel []struct {
		Streams int     `json:"streams"`
		Actions float64 `json:"actions_mib_per_s"`
		Files   float64 `json:"files_mib_per_s"`
	} `json:"parallel_actions"`
	Reduce []struct {
		Strategy string  `json:"strategy"`
		Workers  int     `json:"workers"`
		Seconds  float64 `json:"seconds"`
		Moved    float64 `json:"bytes_moved"`
		Stored   float64 `json:"bytes_stored"`
	} `json:"reduce_runs"`
}

// shuffleResults is the part of bench/shuffle's results file the figures
// use.
type shuffleResults struct {
	Baseline  string `json:"baseline"`
	Cores     int    `json:"cores"`
	Workloads map[string]struct {
		Ratios map[string]float64 `json:"ratios"`
	} `json:"workloads"`
}

func main() {
	gliderPath := flag.String("glider", "bench/results/glider.json", "bench/glider's results file")
	shufflePath := flag.String("shuffle", "bench/results/shuffle.json", "bench/shuffle's results file")
	out := flag.String("out", "docs/img", "directory for the PNG files")
	flag.Parse()
	if err := run(*gliderPath, *shufflePath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gliderplot:", err)
		os.Exit(1)
	}
}

func run(gliderPath, shufflePath, out string) error {
	var g gliderResults
	if err := readJSON(gliderPath, &g); err != nil {
		return err
	}
	var s shuffleResults
	if err := readJSON(shufflePath, &s); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	figs := []struct {
		name string
		draw func() (*plot.Plot, error)
	}{
		{"glider-jobs.png", func() (*plot.Plot, error) { return jobs(s) }},
		{"glider-bandwidth.png", func() (*plot.Plot, error) { return bandwidth(g) }},
		{"glider-reduce.png", func() (*plot.Plot, error) { return reduce(g) }},
	}
	for _, f := range figs {
		p, err := f.draw()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		path := filepath.Join(out, f.name)
		// Save writes the file in place; write a temporary file and rename
		// it so a failed run leaves the previous figure, not half of one.
		tmp := filepath.Join(out, "."+f.name+".tmp.png")
		if err := p.Save(18*vg.Centimeter, 10*vg.Centimeter, tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run the benchmark that writes it first; see docs/benchmarks.md)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// jobs: glider / data shipping ratios per whole-job workload.
func jobs(s shuffleResults) (*plot.Plot, error) {
	if len(s.Workloads) == 0 {
		return nil, errors.New("no workloads in the shuffle results")
	}
	names := make([]string, 0, len(s.Workloads))
	for n := range s.Workloads {
		names = append(names, n)
	}
	slices.Sort(names)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Whole jobs: glider / %s (%d cores)", s.Baseline, s.Cores)
	p.Y.Label.Text = "ratio (below 1: glider better)"
	w := vg.Points(14)
	series := []struct {
		key, name string
		c         color.Color
	}{{"time", "time", blue}, {"cpu", "CPU", green}, {"shuffle_bytes", "shuffle bytes", orange}, {"boundary_after_sampling", "all bytes moved", gray}}
	top := 1.0
	for i, ser := range series {
		var vals plotter.Values
		for _, n := range names {
			v := s.Workloads[n].Ratios[ser.key]
			if ser.key == "boundary_after_sampling" && v == 0 {
				v = s.Workloads[n].Ratios["boundary_bytes"]
			}
			vals = append(vals, v)
			top = max(top, v)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = ser.c
		bars.LineStyle.Width = 0
		bars.Offset = w * (vg.Length(i) - vg.Length(len(series)-1)/2)
		p.Add(bars)
		p.Legend.Add(ser.name, bars)
	}
	parity, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(names)) - 0.5, Y: 1}})
	if err != nil {
		return nil, err
	}
	parity.Color = gray
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(parity)
	p.Y.Min, p.Y.Max = 0, top*1.3
	p.Legend.Top = true
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i], _, _ = strings.Cut(n, ",")
		labels[i], _, _ = strings.Cut(labels[i], ":")
		labels[i], _, _ = strings.Cut(labels[i], " prefix")
	}
	p.NominalX(labels...)
	return p, nil
}

// bandwidth: aggregate write bandwidth against parallel streams.
func bandwidth(g gliderResults) (*plot.Plot, error) {
	if len(g.Parallel) == 0 {
		return nil, errors.New("no parallel_actions in the glider results")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Aggregate write bandwidth of parallel streams (%d cores, loopback)", g.CPUs)
	p.X.Label.Text = "parallel streams"
	p.Y.Label.Text = "MiB/s"
	var acts, files plotter.XYs
	for _, r := range g.Parallel {
		acts = append(acts, plotter.XY{X: float64(r.Streams), Y: r.Actions})
		files = append(files, plotter.XY{X: float64(r.Streams), Y: r.Files})
	}
	for _, l := range []struct {
		name string
		xy   plotter.XYs
		c    color.Color
	}{{"actions", acts, blue}, {"files", files, orange}} {
		line, pts, err := plotter.NewLinePoints(l.xy)
		if err != nil {
			return nil, err
		}
		line.Color, pts.Color = l.c, l.c
		p.Add(line, pts)
		p.Legend.Add(l.name, line, pts)
	}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// reduce: bytes moved and stored per reduce strategy and worker count.
func reduce(g gliderResults) (*plot.Plot, error) {
	if len(g.Reduce) == 0 {
		return nil, errors.New("no reduce_runs in the glider results")
	}
	var strategies []string
	var workers []int
	for _, r := range g.Reduce {
		if !slices.Contains(strategies, r.Strategy) {
			strategies = append(strategies, r.Strategy)
		}
		if !slices.Contains(workers, r.Workers) {
			workers = append(workers, r.Workers)
		}
	}
	p := plot.New()
	p.Title.Text = "Reduce over 1,024 keys: bytes moved (MB)"
	p.Y.Label.Text = "MB moved between workers and storage"
	w := vg.Points(14)
	colors := []color.Color{orange, gray, blue, green}
	for i, st := range strategies {
		vals := make(plotter.Values, len(workers))
		for _, r := range g.Reduce {
			if r.Strategy == st {
				vals[slices.Index(workers, r.Workers)] = r.Moved / 1e6
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = colors[i%len(colors)]
		bars.LineStyle.Width = 0
		bars.Offset = w * (vg.Length(i) - vg.Length(len(strategies)-1)/2)
		p.Add(bars)
		p.Legend.Add(st, bars)
	}
	labels := make([]string, len(workers))
	for i, n := range workers {
		labels[i] = fmt.Sprintf("W = %d", n)
	}
	p.NominalX(labels...)
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min = 0
	var top float64
	for _, r := range g.Reduce {
		top = max(top, r.Moved/1e6)
	}
	p.Y.Max = top * 1.5
	return p, nil
}
