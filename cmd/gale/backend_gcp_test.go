//go:build !gale_slim || gale_gcp

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/config"
	"github.com/galeproject/gale/internal/textgen"
)

// Word count on the gcp backend, through a local stand-in of three gale
// worker processes each serving the Functions Framework on a loopback
// port (started as the platform starts instances, with FUNCTION_TARGET
// and PORT), invoked over HTTP by the gcp client, matches the local
// backend's output file for file.
func TestWordCountOnTheGCPBackendMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	t.Parallel() // runs gale processes; sets no environment
	bin := buildGale(t)
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 2 << 20
	if err := textgen.GenerateFile(context.Background(), corpus, cfg); err != nil {
		t.Fatal(err)
	}
	run := func(name, backend, config string) (string, map[string][]byte) {
		out := filepath.Join(dir, "out-"+name)
		conf := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "wordcount", "--input", corpus, "--output", out, "--backend", backend,
			"--workers", "3", "--partitions", "4", "--chunk-size", "256KiB", "-q", "--top", "0")
		cmd.Env = append(os.Environ(), "GALE_CONFIG="+conf)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --backend %s: %v\nstdout:\n%s\nstderr:\n%s", backend, err, &stdout, &stderr)
		}
		return stdout.String(), partFiles(t, out)
	}
	_, local := run("local", "local", "{}\n")
	report, g := run("gcp", "gcp", "backends:\n  gcp:\n    memory_mib: 512\n    local:\n      instances: 3\n")
	probeStandIn(t, bin, "gcp", "GALE_CONFIG="+filepath.Join(dir, "gcp.yaml"))
	if !strings.Contains(report, "on gcp") || !strings.Contains(report, "estimated cost on gcp") {
		t.Errorf("the report does not name the backend and its cost:\n%s", report)
	}
	if len(g) != len(local) {
		t.Fatalf("gcp wrote %d part files, local %d", len(g), len(local))
	}
	for name, want := range local {
		if !bytes.Equal(g[name], want) {
			t.Errorf("%s differs between the gcp and local backends", name)
		}
	}
}

func TestGCPConfigSection(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte("backends:\n  gcp:\n    project: my-project\n    regoin: europe-west1\n"), 0o644)
	t.Setenv("GALE_CONFIG", conf)
	_, _, err := openBackend(context.Background(), "gcp", backendEnv{Stderr: os.Stderr})
	if err == nil || !strings.Contains(err.Error(), "regoin") || !strings.Contains(err.Error(), "backends.gcp") {
		t.Errorf("a misspelt key: %v, want an error naming it and the section", err)
	}
	os.WriteFile(conf, []byte("backends:\n  gcp:\n    project: my-project\n"), 0o644)
	_, _, err = openBackend(context.Background(), "gcp", backendEnv{Stderr: os.Stderr})
	if err == nil || !strings.Contains(err.Error(), "region and function") {
		t.Errorf("no function configured: %v", err)
	}
	os.WriteFile(conf, []byte("backends:\n  gcp:\n    project: my-project\n    region: europe-west1\n    function: gale\n    memory_mib: 2048\n"), 0o644)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := config.Traits(context.Background(), "gcp", c)
	if err != nil || tr.MemoryMiB != 2048 || tr.VCPUs != 1 || tr.PricePerRequest == 0 {
		t.Errorf("traits = %+v, %v", tr, err)
	}
}

// gale deploy gcp --zip-only writes the function source: the binary given
// with --binary, executable, beside the generated module.
func TestDeployGCPZipOnly(t *testing.T) {
	dir := t.TempDir()
	worker := filepath.Join(dir, "worker")
	os.WriteFile(worker, []byte("\x7fELF fake worker"), 0o755)
	t.Setenv("GALE_CONFIG", filepath.Join(dir, "none.yaml"))
	os.WriteFile(filepath.Join(dir, "none.yaml"), []byte("{}\n"), 0o644)
	out := filepath.Join(dir, "src.zip")
	cmd := newDeployGCPCmd()
	cmd.SetArgs([]string{"--binary", worker, "--zip-only", out})
	var stdout bytes.Buffer
	cmd.SetOut(&stdout)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "gale-worker" && f.Mode().Perm() != 0o755 {
			t.Errorf("gale-worker mode %v", f.Mode())
		}
	}
	if strings.Join(names, ",") != "go.mod,function.go,gale-worker" {
		t.Errorf("zip entries %v", names)
	}
}
