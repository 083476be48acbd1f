// Package browsertest runs headless Chromium for tests of the dashboard
// (package ui), driven through the DevTools protocol with chromedp.
//
// Chromium is Debian's chromium package, which scripts/install-standins.sh
// installs (make test runs it); GALE_CHROMIUM names another binary. Where
// it is missing a test fails with a message saying how to install it, as
// for every stand-in (internal/standin: GALE_STANDINS=skip skips instead,
// except under CI), so the browser tests cannot silently stop running.
//
// Chromium runs with a fresh profile in the test's temporary directory and
// with everything that would reach the network off (the machines that run
// the tests may have none).
//
// Imports: chromedp, internal/standin and the standard library. Goroutines: chromedp's, for
// the browser's connection; Start's cleanup stops the browser and waits.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/galeproject/gale/internal/standin"
)

// Find returns the path of a Chromium binary, or an error saying how to
// install one.
func Find() (string, error) {
	if p := os.Getenv("GALE_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("headless Chromium is not installed: install the Debian package chromium (bash scripts/install-standins.sh does, as make test runs it), or set GALE_CHROMIUM to a Chromium binary")
}

// Browser is one headless Chromium.
type Browser struct {
	ctx context.Context // the browser's, for new tabs
}

// Start starts headless Chromium for t and stops it when t ends. When
// Chromium is not installed it fails t, or skips it with
// GALE_STANDINS=skip (internal/standin).
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := Find()
	if err != nil {
		standin.Missing(t, err.Error())
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.CombinedOutput(io.Discard),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	// The first run starts the browser.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
	})
	return &Browser{ctx: ctx}
}

// Page opens url in a new tab, closed when t ends, and returns the tab's
// context for chromedp actions.
func (b *Browser) Page(t testing.TB, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	return ctx
}

// Eval evaluates a JavaScript expression in the tab and decodes its value.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript condition in the tab until it holds, and
// fails t (printing what describe evaluates to) if it does not within
// timeout.
func WaitFor(t testing.TB, ctx context.Context, cond, describe string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[any](describe))
			t.Fatalf("after %v the page does not satisfy %s (err %v); %s = %v", timeout, cond, err, describe, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot captures the whole page as PNG into dir/name, checks that it
// decodes and is not blank, and returns its path.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() < 800 || r.Dy() < 400 {
		t.Fatalf("screenshot %s is %v, too small", name, r)
	}
	// A blank capture has one colour; a drawn page has many.
	colours := map[uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y && len(colours) < 64; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[cr>>8<<16|cg>>8<<8|cb>>8] = true
		}
	}
	if len(colours) < 16 {
		t.Fatalf("screenshot %s has %d colours: the page looks blank", name, len(colours))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Quote returns s as a JavaScript string literal.
func Quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "<", `\x3c`)
	return "'" + r.Replace(s) + "'"
}
