package ui_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/ui"
)

// screenshots is where the browser tests write their screenshots: a
// temporary directory, or docs/img with -screenshots (make screenshots).
var screenshots = flag.String("screenshots", "", "write the dashboard's screenshots into this directory (docs/img) instead of a temporary one")

func shotDir(t *testing.T) string {
	if *screenshots != "" {
		return *screenshots
	}
	return t.TempDir()
}

// TestMain makes the test binary a Gale worker when the process backend
// starts it: building the test pipelines registers their kernels.
func TestMain(m *testing.M) {
	buildGated(gale.NewPipeline(), []string{"input"}, "output")
	buildPoisoned(gale.NewPipeline())
	gale.ServeWorkerIfRequested()
	flag.Parse()
	os.Exit(m.Run())
}

// gateEnv names the file whose existence releases the task that reads the
// line "GATE": the test holds a job mid-run while it looks at the page.
const gateEnv = "GALE_UI_TEST_GATE"

func gatedWords(line string, emit func(string)) {
	if line == "GATE" {
		gate := os.Getenv(gateEnv)
		// At most two minutes, so that a test that failed before opening
		// the gate cannot leave a job behind.
		for end := time.Now().Add(2 * time.Minute); gate != "" && time.Now().Before(end); {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}

func buildGated(p *gale.Pipeline, inputs []string, out string) {
	gale.WriteText(gale.CountPerElement(gale.FlatMap(gale.ReadText(p, inputs...), gatedWords)), out)
}

func failOnPoison(s string) string {
	if s == "poison" {
		panic("poisoned element")
	}
	return s
}

// poisoned holds 40 elements, the 38th of which fails every attempt.
func buildPoisoned(p *gale.Pipeline) {
	xs := make([]string, 40)
	for i := range xs {
		xs[i] = fmt.Sprintf("x%d", i)
	}
	xs[37] = "poison"
	gale.Collect(gale.Map(gale.FromSlice(p, xs), failOnPoison))
}

// gatedInputs writes files text files of 200 lines each into dir, the last
// holding the line GATE, and returns their paths and the number of lines
// of all but the last.
func gatedInputs(t *testing.T, dir string, files int) (paths []string, ungatedLines int) {
	t.Helper()
	for i := range files {
		var b strings.Builder
		for j := range 200 {
			fmt.Fprintf(&b, "w%d w%d w%d\n", (i+j)%50, (i*j)%37, j%11)
		}
		lines := 200
		if i == files-1 {
			b.WriteString("GATE\n")
			lines++
		} else {
			ungatedLines += lines
		}
		p := filepath.Join(dir, fmt.Sprintf("in-%d.txt", i))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, ungatedLines
}

// serve starts a dashboard for t and returns it; t's cleanup closes it
// and waits for it.
func serve(t *testing.T, cfg ui.Config) *ui.Server {
	t.Helper()
	srv, err := ui.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		wg.Wait()
	})
	return srv
}

// getJSON fetches a dashboard API path into v.
func getJSON(t *testing.T, srv *ui.Server, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// num formats n as the page does (en-US thousands separators).
func num(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
