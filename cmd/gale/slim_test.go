package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// A slim build (-tags gale_slim) links no cloud SDK: it is far smaller,
// still runs jobs on the local and process backends, and says how to link
// a cloud when asked for one.
func TestSlimBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary twice")
	}
	t.Parallel() // runs gale processes; sets no environment
	full, slim, slimAWS := buildGale(t), buildGaleTags(t, "gale_slim"), buildGaleTags(t, "gale_slim,gale_aws")
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	fs, ss, sa := size(full), size(slim), size(slimAWS)
	t.Logf("stripped gale binary: full %.1f MiB, gale_slim %.1f MiB (%.2fx), gale_slim,gale_aws %.1f MiB (%.2fx)",
		float64(fs)/(1<<20), float64(ss)/(1<<20), float64(ss)/float64(fs), float64(sa)/(1<<20), float64(sa)/float64(fs))
	if !(ss < sa && sa < fs) {
		t.Errorf("sizes: gale_slim %d, gale_slim,gale_aws %d, full %d bytes; want each smaller than the next", ss, sa, fs)
	}

	run := func(bin string, env []string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	// The backends listed are those linked.
	out, errOut, err := run(slim, nil, "backends")
	if err != nil {
		t.Fatalf("gale backends: %v\n%s", err, errOut)
	}
	for _, want := range []string{"local", "process", "sim:aws"} {
		if !strings.Contains(out, want) {
			t.Errorf("gale backends of a slim build does not list %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "aws" || f[0] == "gcp" || f[0] == "azure" || f[0] == "ibm") {
			t.Errorf("gale backends of a slim build lists %s:\n%s", f[0], out)
		}
	}

	// A word count on worker processes of the slim binary is right.
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 1 << 20
	if err := textgen.GenerateFile(context.Background(), corpus, cfg); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	if _, errOut, err := run(slim, nil, "run", "wordcount", "--input", corpus, "--output", outDir, "--backend", "process",
		"--workers", "2", "--partitions", "3", "--chunk-size", "256KiB", "-q", "--top", "0"); err != nil {
		t.Fatalf("gale run wordcount on a slim build: %v\n%s", err, errOut)
	}
	want, err := wordref.CountFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wordref.ReadCountDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := wordref.Diff(got, want); err != nil {
		t.Error(err)
	}

	// What the slim build lacks is named with the tag that links it.
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte("backends:\n  gcp:\n    local: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		says string
	}{
		{"an unlinked backend", nil, []string{"run", "wordcount", "--input", corpus, "--backend", "aws"},
			"To run this with aws linked: go run -tags gale_slim,gale_aws github.com/galeproject/gale/cmd/gale run wordcount --input " + corpus + " --backend aws"},
		{"an unlinked store", nil, []string{"run", "wordcount", "--input", "gs://bucket/corpus"}, "gale_slim,gale_gcp"},
		{"an unlinked config section", []string{"GALE_CONFIG=" + conf}, []string{"run", "wordcount", "--input", corpus}, "gale_slim,gale_gcp"},
		{"an unlinked deploy", nil, []string{"deploy", "--backend", "ibm"}, "gale_slim,gale_ibm"},
		{"an unlinked platform", []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}, nil, "gale_slim,gale_aws"},
	} {
		_, errOut, err := run(slim, c.env, c.args...)
		if err == nil || !strings.Contains(errOut, c.says) {
			t.Errorf("%s: gale %s: %v, want an error saying %q\n%s", c.name, strings.Join(c.args, " "), err, c.says, errOut)
		}
	}
	// With gale_aws the AWS deploy is there (and fails only for want of a
	// role and credentials, before building anything).
	if _, errOut, _ := run(slimAWS, nil, "deploy", "aws", "--help"); strings.Contains(errOut, "does not link") {
		t.Errorf("gale deploy aws --help on a gale_aws build: %s", errOut)
	}
}
