package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
	green  = color.RGBA{44, 160, 44, 255}
	red    = color.RGBA{214, 39, 40, 255}
	gray   = color.RGBA{127, 127, 127, 255}
)

// plots draws the three figures into dir.
func plots(res results, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, draw := range map[string]func(results) (*plot.Plot, error){
		"iterative-per-round.png": perRound,
		"iterative-scaleup.png":   scaleUp,
		"iterative-breakdown.png": breakdown,
	} {
		p, err := draw(res)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, name)
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// perRound: time per round by mode, k-means and logistic regression.
func perRound(res results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Time per round, %d workers (%s backend)", res.KMeans[0].Workers, res.Backend)
	p.Y.Label.Text = "ms per round"
	w := vg.Points(18)
	modes := []struct {
		name string
		c    color.Color
	}{{"shared", blue}, {"stages", orange}, {"local", green}}
	for i, m := range modes {
		var vals plotter.Values
		for _, runs := range [][]modeRun{res.KMeans, res.LogReg} {
			for _, r := range runs {
				if r.Mode == m.name {
					vals = append(vals, r.RoundMS)
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = m.c
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(i-1)
		p.Add(bars)
		p.Legend.Add(m.name, bars)
	}
	var top float64
	for _, r := range append(res.KMeans, res.LogReg...) {
		top = max(top, r.RoundMS)
	}
	p.Y.Min, p.Y.Max = 0, top*1.35 // room for the legend
	p.Legend.Top = true
	p.NominalX("k-means", "logistic regression")
	return p, nil
}

// scaleUp: T1/Tn against the workers, with the core-bound ideal.
func scaleUp(res results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("k-means scale-up, input growing with the workers (%d CPUs, %s backend)", res.CPUs, res.Backend)
	p.X.Label.Text = "workers n"
	p.Y.Label.Text = "scale-up T1/Tn"
	p.Y.Min, p.Y.Max = 0, 1.1
	var got, bound, ideal plotter.XYs
	for i, r := range res.ScaleUp {
		got = append(got, plotter.XY{X: float64(r.Workers), Y: res.ScaleUpRatio[i]})
		bound = append(bound, plotter.XY{X: float64(r.Workers), Y: coreBound(r.Workers, res.CPUs)})
		ideal = append(ideal, plotter.XY{X: float64(r.Workers), Y: 1})
	}
	for _, l := range []struct {
		name string
		xy   plotter.XYs
		c    color.Color
		dash bool
	}{{"measured", got, blue, false}, {fmt.Sprintf("best on %d cores", res.CPUs), bound, red, true}, {"one core per worker", ideal, gray, true}} {
		line, pts, err := plotter.NewLinePoints(l.xy)
		if err != nil {
			return nil, err
		}
		line.Color, pts.Color = l.c, l.c
		if l.dash {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(line, pts)
		p.Legend.Add(l.name, line, pts)
	}
	p.Legend.Left = true
	p.Legend.Top = false
	return p, nil
}

// breakdown: where the workers' round time goes, per worker count.
func breakdown(res results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Shared-mode k-means: share of the workers' round time"
	p.Y.Label.Text = "share of round time"
	p.Y.Max = 1.3 // room for the legend above the bars
	w := vg.Points(22)
	var comp, dso, bar plotter.Values
	var names []string
	for _, r := range res.ScaleUp {
		comp = append(comp, r.ComputeShare)
		dso = append(dso, r.DSOShare)
		bar = append(bar, r.BarrierShare)
		names = append(names, fmt.Sprintf("n=%d", r.Workers))
	}
	var below *plotter.BarChart
	for _, s := range []struct {
		name string
		v    plotter.Values
		c    color.Color
	}{{"compute", comp, green}, {"shared objects", dso, blue}, {"barrier wait", bar, orange}} {
		b, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return nil, err
		}
		b.Color = s.c
		b.LineStyle.Width = 0
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	return p, nil
}
