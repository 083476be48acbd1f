// Package mandelbrot renders the Mandelbrot set row-parallel on cloud
// threads into a shared image object, then writes it as a PNG.
//
// The image is an AtomicByteArray of Width·Height grey pixels on the DSO.
// A distributed parallel for (threads.Executor.ParallelFor) gives each
// worker a contiguous block of rows; a worker computes a row and stores it
// with one SetRange call. The driver reads the image back in chunks and
// writes the PNG atomically (a temporary file in the same directory, synced
// and renamed), so a reader never sees a partial image.
//
// Pixel (x, y) maps to c = (-2.5 + 3.5·x/W) + (-1.25 + 2.5·y/H)i; its grey
// level is 255 for points that do not escape within MaxIter iterations,
// else 255·n/MaxIter for escape after n iterations.
//
// A worker binary must call Register. Run starts goroutines only through
// threads.StartLocal, which it closes before returning.
package mandelbrot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/galeproject/gale/state"
	"github.com/galeproject/gale/state/threads"
)

// FuncName is the registered name of the row worker.
const FuncName = "gale.examples.mandelbrot.rows"

// Config configures a run.
type Config struct {
	// Width and Height in pixels. Default 640 × 480.
	Width, Height int
	// MaxIter bounds the iterations per pixel. Default 256.
	MaxIter int
	// Workers is the number of cloud threads. Default 4.
	Workers int
	// Output is the PNG file to write. Required.
	Output string
	// Executor and DSO, if both set, run the threads there.
	Executor *threads.Executor
	DSO      *state.Client
}

func (c *Config) fill() {
	if c.Width == 0 {
		c.Width = 640
	}
	if c.Height == 0 {
		c.Height = 480
	}
	if c.MaxIter == 0 {
		c.MaxIter = 256
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Width < 0 || c.Height < 0 || c.Width*c.Height > 1<<30 {
		errs = append(errs, fmt.Errorf("mandelbrot: image size %d×%d invalid (each >= 0, at most 2^30 pixels)", c.Width, c.Height))
	}
	if c.MaxIter < 0 || c.MaxIter > 1<<20 {
		errs = append(errs, fmt.Errorf("mandelbrot: MaxIter must be in 0..2^20, got %d", c.MaxIter))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("mandelbrot: Workers must be >= 0, got %d", c.Workers))
	}
	if c.Output == "" {
		errs = append(errs, errors.New("mandelbrot: Output (the PNG file) is required"))
	}
	if (c.Executor == nil) != (c.DSO == nil) {
		errs = append(errs, errors.New("mandelbrot: set both Executor and DSO, or neither"))
	}
	return errors.Join(errs...)
}

// Result describes the image written.
type Result struct {
	Width, Height int
	// Output is the PNG file written.
	Output string
	// Inside counts pixels that did not escape.
	Inside int
}

// Task is the argument shared by every row.
type Task struct {
	Key                    string `json:"key"`
	Width, Height, MaxIter int
}

// Row computes row y of the image.
func Row(y, width, height, maxIter int) []byte {
	row := make([]byte, width)
	ci := -1.25 + 2.5*float64(y)/float64(height)
	for x := 0; x < width; x++ {
		cr := -2.5 + 3.5*float64(x)/float64(width)
		zr, zi := 0.0, 0.0
		n := 0
		for ; n < maxIter && zr*zr+zi*zi <= 4; n++ {
			zr, zi = zr*zr-zi*zi+cr, 2*zr*zi+ci
		}
		if n == maxIter {
			row[x] = 255
		} else {
			row[x] = byte(255 * n / maxIter)
		}
	}
	return row
}

// Register adds the row worker to reg.
func Register(reg *threads.Registry) {
	threads.RegisterFor(reg, FuncName, func(ctx context.Context, env *threads.Env, y int, t Task) error {
		if env.DSO == nil {
			return errors.New("mandelbrot: the worker has no DSO")
		}
		img := env.DSO.AtomicByteArray(t.Key, t.Width*t.Height)
		return img.SetRange(ctx, y*t.Width, Row(y, t.Width, t.Height, t.MaxIter))
	})
}

// Run renders the image and writes cfg.Output.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ex, dso := cfg.Executor, cfg.DSO
	if ex == nil {
		reg := threads.NewRegistry()
		Register(reg)
		l, err := threads.StartLocal(ctx, threads.LocalConfig{Registry: reg})
		if err != nil {
			return Result{}, err
		}
		defer l.Close()
		ex, dso = l.Executor, l.DSO
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	t := Task{Key: "mandelbrot/" + hex.EncodeToString(id[:]), Width: cfg.Width, Height: cfg.Height, MaxIter: cfg.MaxIter}
	if err := ex.ParallelFor(ctx, FuncName, cfg.Height, cfg.Workers, t); err != nil {
		return Result{}, fmt.Errorf("mandelbrot: %w", err)
	}
	img := image.NewGray(image.Rect(0, 0, cfg.Width, cfg.Height))
	shared := dso.AtomicByteArray(t.Key, cfg.Width*cfg.Height)
	// Read back in chunks of whole rows of about 1 MiB, well under the
	// frame limit.
	rows := max(1, (1<<20)/max(cfg.Width, 1))
	for y := 0; y < cfg.Height; y += rows {
		n := min(rows, cfg.Height-y)
		b, err := shared.GetRange(ctx, y*cfg.Width, n*cfg.Width)
		if err != nil {
			return Result{}, fmt.Errorf("mandelbrot: reading the image: %w", err)
		}
		copy(img.Pix[y*cfg.Width:], b)
	}
	res := Result{Width: cfg.Width, Height: cfg.Height, Output: cfg.Output}
	for _, p := range img.Pix {
		if p == 255 {
			res.Inside++
		}
	}
	if err := writePNG(cfg.Output, img); err != nil {
		return Result{}, err
	}
	return res, nil
}

func writePNG(path string, img image.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("mandelbrot: creating %s: %w", path, err)
	}
	tmp := f.Name()
	err = png.Encode(f, img)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mandelbrot: writing %s: %w", path, err)
	}
	return nil
}
