package mandelbrot

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// escape is an independent sequential rendering using complex128.
func escape(x, y, w, h, maxIter int) byte {
	c := complex(-2.5+3.5*float64(x)/float64(w), -1.25+2.5*float64(y)/float64(h))
	z := complex(0, 0)
	n := 0
	for ; n < maxIter && real(z)*real(z)+imag(z)*imag(z) <= 4; n++ {
		z = complex(real(z)*real(z)-imag(z)*imag(z)+real(c), 2*real(z)*imag(z)+imag(c))
	}
	if n == maxIter {
		return 255
	}
	return byte(255 * n / maxIter)
}

func TestRunMatchesSequential(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.png")
	cfg := Config{Width: 160, Height: 97, MaxIter: 200, Workers: 6, Output: out}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds().Dx() != cfg.Width || g.Bounds().Dy() != cfg.Height {
		t.Fatalf("decoded %T %v", img, img.Bounds())
	}
	inside := 0
	for y := 0; y < cfg.Height; y++ {
		for x := 0; x < cfg.Width; x++ {
			want := escape(x, y, cfg.Width, cfg.Height, cfg.MaxIter)
			if got := g.GrayAt(x, y).Y; got != want {
				t.Fatalf("pixel (%d,%d) = %d, sequential %d", x, y, got, want)
			}
			if want == 255 {
				inside++
			}
		}
	}
	if res.Inside != inside || inside == 0 {
		t.Fatalf("inside = %d, sequential %d", res.Inside, inside)
	}
	// No temporary file is left behind.
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the PNG", len(ents))
	}
}
