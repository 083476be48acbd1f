package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/galeproject/gale/backends/objstore"
)

// PointsConfig describes a clustered points dataset, as spark-perf's
// k-means data (MLlib's KMeansDataGenerator): K centers with coordinates
// drawn from N(0, Scale²), and point i at center i mod K plus N(0, 1)
// noise on every coordinate.
type PointsConfig struct {
	// Count is the number of points.
	Count int64
	// Dim is the number of coordinates per point.
	Dim int
	// K is the number of clusters.
	K int
	// Scale is the standard deviation of the centers' coordinates.
	// Default 10.
	Scale float64
	// Seed selects the dataset: the same configuration and seed give the
	// same bytes, whatever Parts is (point i depends only on Seed and i).
	// Default 1.
	Seed uint64
	// Parts is the number of files (part-00000.csv, ...); point i goes to
	// part i·Parts/Count, so the files in order hold the points in order.
	// Default 1.
	Parts int
}

func (c *PointsConfig) fill() {
	if c.Scale == 0 {
		c.Scale = 10
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Parts == 0 {
		c.Parts = 1
	}
}

// Validate reports every problem with c.
func (c PointsConfig) Validate() error {
	c.fill()
	var errs []error
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("dataset: points Count must be at least 1, got %d", c.Count))
	}
	if c.Dim < 1 {
		errs = append(errs, fmt.Errorf("dataset: points Dim must be at least 1, got %d", c.Dim))
	}
	if c.K < 1 {
		errs = append(errs, fmt.Errorf("dataset: points K must be at least 1, got %d", c.K))
	}
	if c.Scale < 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
		errs = append(errs, fmt.Errorf("dataset: points Scale must be a finite number >= 0, got %v", c.Scale))
	}
	if c.Parts < 1 || int64(c.Parts) > max(c.Count, 1) {
		errs = append(errs, fmt.Errorf("dataset: Parts must be between 1 and Count (%d), got %d", c.Count, c.Parts))
	}
	return errors.Join(errs...)
}

// Centers returns the generating centers of the points dataset, K·Dim
// coordinates.
func (c PointsConfig) Centers() []float64 {
	c.fill()
	rng := rand.New(rand.NewPCG(c.Seed, math.MaxUint64))
	out := make([]float64, c.K*c.Dim)
	for i := range out {
		out[i] = rng.NormFloat64() * c.Scale
	}
	return out
}

// LabeledConfig describes a labeled points dataset for logistic
// regression, as spark-perf's GLM classification data: every feature drawn
// from N(0, 1), a hidden weight vector w drawn from N(0, 1) per feature,
// and the label 1 with probability sigmoid(Sharpness · w·x / sqrt(F)),
// else 0. A line is the label then the features.
type LabeledConfig struct {
	// Count is the number of points.
	Count int64
	// Features is the number of features per point.
	Features int
	// Sharpness scales the margin: larger is more separable. Default 3.
	Sharpness float64
	// Seed and Parts are as in PointsConfig.
	Seed  uint64
	Parts int
}

func (c *LabeledConfig) fill() {
	if c.Sharpness == 0 {
		c.Sharpness = 3
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Parts == 0 {
		c.Parts = 1
	}
}

// Validate reports every problem with c.
func (c LabeledConfig) Validate() error {
	c.fill()
	var errs []error
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("dataset: labeled Count must be at least 1, got %d", c.Count))
	}
	if c.Features < 1 {
		errs = append(errs, fmt.Errorf("dataset: labeled Features must be at least 1, got %d", c.Features))
	}
	if c.Sharpness < 0 || math.IsNaN(c.Sharpness) || math.IsInf(c.Sharpness, 0) {
		errs = append(errs, fmt.Errorf("dataset: labeled Sharpness must be a finite number >= 0, got %v", c.Sharpness))
	}
	if c.Parts < 1 || int64(c.Parts) > max(c.Count, 1) {
		errs = append(errs, fmt.Errorf("dataset: Parts must be between 1 and Count (%d), got %d", c.Count, c.Parts))
	}
	return errors.Join(errs...)
}

// Weights returns the hidden weight vector of the labeled dataset.
func (c LabeledConfig) Weights() []float64 {
	c.fill()
	rng := rand.New(rand.NewPCG(c.Seed, math.MaxUint64))
	out := make([]float64, c.Features)
	for i := range out {
		out[i] = rng.NormFloat64()
	}
	return out
}

// PartName returns the key of part i.
func PartName(i int) string { return fmt.Sprintf("part-%05d.csv", i) }

// digits is the number of significant digits written per value: enough
// for the examples, and every mode parses the same text.
const digits = 8

// WritePoints writes the points dataset into st as cfg.Parts files, each
// put atomically (a failed run leaves no partial file).
func WritePoints(ctx context.Context, st objstore.Store, cfg PointsConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.fill()
	centers := cfg.Centers()
	return writeParts(ctx, st, cfg.Count, cfg.Parts, func(w *bufio.Writer, lo, hi int64) error {
		pcg := rand.NewPCG(0, 0)
		rng := rand.New(pcg)
		var b []byte
		for i := lo; i < hi; i++ {
			pcg.Seed(cfg.Seed, uint64(i))
			c := centers[int(i%int64(cfg.K))*cfg.Dim:]
			b = b[:0]
			for j := range cfg.Dim {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, c[j]+rng.NormFloat64(), 'g', digits, 64)
			}
			b = append(b, '\n')
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// WriteLabeled writes the labeled dataset into st as cfg.Parts files, each
// put atomically.
func WriteLabeled(ctx context.Context, st objstore.Store, cfg LabeledConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.fill()
	w := cfg.Weights()
	scale := cfg.Sharpness / math.Sqrt(float64(cfg.Features))
	return writeParts(ctx, st, cfg.Count, cfg.Parts, func(out *bufio.Writer, lo, hi int64) error {
		pcg := rand.NewPCG(0, 0)
		rng := rand.New(pcg)
		x := make([]float64, cfg.Features)
		var b []byte
		for i := lo; i < hi; i++ {
			pcg.Seed(cfg.Seed, uint64(i))
			for j := range x {
				// Round as written, so the label follows the features the
				// readers see.
				x[j], _ = strconv.ParseFloat(strconv.FormatFloat(rng.NormFloat64(), 'g', digits, 64), 64)
			}
			p := 1 / (1 + math.Exp(-scale*Dot(w, x)))
			label := byte('0')
			if rng.Float64() < p {
				label = '1'
			}
			b = append(b[:0], label)
			for _, v := range x {
				b = append(b, ',')
				b = strconv.AppendFloat(b, v, 'g', digits, 64)
			}
			b = append(b, '\n')
			if _, err := out.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeParts writes parts files, part i holding rows [count·i/parts,
// count·(i+1)/parts), at most GOMAXPROCS at a time. Each part streams from
// a producer goroutine into st.Put through a pipe.
func writeParts(ctx context.Context, st objstore.Store, count int64, parts int, rows func(w *bufio.Writer, lo, hi int64) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range parts {
		lo, hi := count*int64(i)/int64(parts), count*int64(i+1)/int64(parts)
		g.Go(func() error {
			pr, pw := io.Pipe()
			produced := make(chan error, 1)
			go func() {
				w := bufio.NewWriterSize(pw, 1<<20)
				err := rows(w, lo, hi)
				if err == nil {
					err = w.Flush()
				}
				pw.CloseWithError(err)
				produced <- err
			}()
			err := st.Put(ctx, PartName(i), pr)
			pr.CloseWithError(errors.New("dataset: put ended")) // unblocks the producer if Put returned early
			if perr := <-produced; err == nil && perr != nil {
				err = perr
			}
			if err != nil {
				return fmt.Errorf("dataset: writing %s in %s: %w", PartName(i), st, err)
			}
			return nil
		})
	}
	return g.Wait()
}
