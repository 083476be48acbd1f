//go:build !gale_slim

package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/config"
)

func TestNames(t *testing.T) {
	names := config.Names()
	for _, want := range []string{"local", "process", "aws", "gcp", "azure", "ibm", "sim:aws", "sim:azure", "sim:gcp", "sim:ibm"} {
		if !slices.Contains(names, want) || !config.Known(want) || config.About(want) == "" {
			t.Errorf("backend %s is not registered with a description (names %v)", want, names)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() = %v, not sorted", names)
	}
	_, err := config.Open(t.Context(), "lambda", nil, config.OpenOptions{})
	wantErr(t, "unknown backend", err, config.ErrUnknownBackend, `"lambda"`, "local, process")
}

// The file and every section are decoded strictly: a misspelt key or
// section fails naming the file, the section and the key.
func TestStrictDecoding(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		text string
		says []string
	}{
		{"storag:\n  s3.region: x\n", []string{"field storag not found"}},
		{"backends:\n  lambda: {}\n", []string{`unknown backend section "lambda"`, "known: aws, azure"}},
		{"backends:\n  gcp: [1, 2]\n", nil}, // not a mapping: caught when decoded
	} {
		p := writeFile(t, tc.text)
		_, err := config.Load(p)
		if tc.says == nil {
			if err != nil {
				t.Errorf("Load(%q) = %v, want sections checked only when decoded", tc.text, err)
			}
			continue
		}
		wantErr(t, fmt.Sprintf("Load(%q)", tc.text), err, nil, append(tc.says, p)...)
	}
	for _, name := range []string{"process", "aws", "gcp", "azure", "ibm", "sim:aws"} {
		f := load(t, fmt.Sprintf("backends:\n  %s:\n    concurency: 3\n", name))
		_, err := config.Open(t.Context(), name, f, config.OpenOptions{Output: &bytes.Buffer{}})
		wantErr(t, "open "+name, err, nil, f.Path, "section backends."+name, "concurency")
		if name != "process" {
			_, err = config.Traits(t.Context(), name, f)
			wantErr(t, "traits of "+name, err, nil, f.Path, "section backends."+name, "concurency")
		}
	}
	f := load(t, "backends:\n  azure:\n    local_host:\n      instance: 2\n")
	var s config.AzureSection
	wantErr(t, "nested key", f.Decode("azure", &s), nil, "section backends.azure", "instance")

	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	wantErr(t, "a named file that is missing", err, os.ErrNotExist, "missing.yaml")
	t.Setenv("GALE_CONFIG", filepath.Join(t.TempDir(), "gone.yaml"))
	_, err = config.Load("")
	wantErr(t, "a GALE_CONFIG file that is missing", err, os.ErrNotExist, "gone.yaml")
	t.Setenv("GALE_CONFIG", "")
	if f, err := config.Load(""); err != nil || len(f.Backends) != 0 || f.Path != filepath.Join(os.Getenv("HOME"), ".gale", "config.yaml") {
		t.Errorf("no file at the default location: %+v, %v; want an empty configuration", f, err)
	}
}

// A cloud backend without what reaching its platform needs fails with
// ErrNotConfigured naming the file, the section and the keys to set;
// a bad value fails naming its key.
func TestNotConfigured(t *testing.T) {
	isolate(t)
	empty := load(t, "{}\n")
	for _, tc := range []struct {
		name string
		f    *config.File
		is   error
		says []string
	}{
		{"gcp", empty, config.ErrNotConfigured, []string{"project, region and function", "backends.gcp", empty.Path, "local: {}"}},
		{"azure", empty, config.ErrNotConfigured, []string{"set app", "backends.azure", empty.Path, "local_host"}},
		{"ibm", empty, config.ErrNotConfigured, []string{"ibm.api_host is required", "ibm.auth is required", "backends.ibm", empty.Path, "wskprops"}},
		{"gcp", nil, config.ErrNotConfigured, []string{"GALE_CONFIG or ~/.gale/config.yaml"}},
		{"aws", load(t, "backends:\n  aws:\n    memory_mib: 99999\n    role: admin\n"), nil, []string{"backends.aws", "memory_mib 99999", `role "admin"`}},
		{"gcp", load(t, "backends:\n  gcp:\n    url: http://127.0.0.1:1\n    local: {}\n"), nil, []string{"backends.gcp", "keep one"}},
		{"azure", load(t, "backends:\n  azure:\n    app: x\n    local_host: {}\n"), nil, []string{"backends.azure", "keep one"}},
		{"sim:gcp", load(t, "backends:\n  sim:gcp:\n    memory_mib: 3\n"), nil, []string{"backends.sim:gcp", "3"}},
	} {
		_, err := config.Open(t.Context(), tc.name, tc.f, config.OpenOptions{Output: &bytes.Buffer{}})
		wantErr(t, "open "+tc.name, err, tc.is, tc.says...)
	}
}

func TestOpenLocal(t *testing.T) {
	isolate(t)
	f := load(t, "storage:\n  s3.region: eu-west-1\n")
	o, err := config.Open(t.Context(), "local", f, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Backend != nil || !o.WorkersHere || o.Traits.Name != "local" || o.StoreOptions["s3.region"] != "eu-west-1" {
		t.Errorf("local: %+v", o)
	}
}

// The process backend runs this test binary as its workers, with the
// section's concurrency (unless OpenOptions.Workers overrides it) and
// OpenOptions.WorkerArgs.
func TestOpenProcess(t *testing.T) {
	isolate(t)
	f := load(t, "backends:\n  process:\n    concurrency: 3\n")
	for _, tc := range []struct{ workers, want int }{{0, 3}, {2, 2}} {
		var out bytes.Buffer
		o, err := config.Open(t.Context(), "process", f, config.OpenOptions{Workers: tc.workers, Output: &out, WorkerArgs: []string{"serve", "now"}})
		if err != nil {
			t.Fatal(err)
		}
		if !o.WorkersHere || o.Traits.MaxConcurrency != tc.want || backends.TraitsOf(o.Backend).MaxConcurrency != tc.want {
			t.Errorf("workers %d: %+v, want concurrency %d", tc.workers, o, tc.want)
		}
		res, err := o.Backend.Invoke(t.Context(), backends.Task{ID: "t1", Payload: []byte("hello")})
		if err != nil {
			t.Fatalf("invoke: %v (worker output: %s)", err, out.String())
		}
		if got, want := string(res.Payload), "hello args=serve,now"; got != want {
			t.Errorf("worker answered %q, want %q", got, want)
		}
		if err := o.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// A simulated platform takes its memory from its section and runs its
// tasks on Gale's stage worker here, refusing those it cannot simulate.
func TestOpenSim(t *testing.T) {
	isolate(t)
	f := load(t, "backends:\n  sim:aws:\n    seed: 7\n    memory_mib: 2048\n")
	o, err := config.Open(t.Context(), "sim:aws", f, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !o.WorkersHere || o.Traits.Name != "sim:aws" || o.Traits.MemoryMiB != 2048 {
		t.Errorf("sim:aws: %+v", o)
	}
	tr, err := config.Traits(t.Context(), "sim:aws", f)
	if err != nil || tr != o.Traits {
		t.Errorf("Traits = %+v, %v; Open's are %+v", tr, err, o.Traits)
	}
	_, err = o.Backend.Invoke(t.Context(), backends.Task{ID: "t1", Payload: []byte(`{"dso":{}}`), Gang: 2})
	wantErr(t, "an iterate task", err, backends.ErrGang, "wait for each other")
}

// A cloud backend's traits follow from its section without reaching the
// platform; the deploy commands read the same sections.
func TestCloudSections(t *testing.T) {
	isolate(t)
	props := writeFile(t, "APIHOST=https://wsk.example\nAUTH=u:k\nNAMESPACE=ns\n")
	t.Setenv("WSK_CONFIG_FILE", props)
	t.Setenv("MY_KEY", "secret")
	f := load(t, `backends:
  aws:
    region: eu-west-1
    memory_mib: 3538
    concurrency: 50
  gcp:
    project: p
    region: europe-west1
    function: f
    memory_mib: 2048
  azure:
    app: a
    key_env: MY_KEY
  ibm:
    namespace: mine
    memory_mib: 512
`)
	for _, tc := range []struct {
		name            string
		memory, maxConc int
	}{{"aws", 3538, 50}, {"gcp", 2048, 0}, {"ibm", 512, 0}} {
		tr, err := config.Traits(t.Context(), tc.name, f)
		if err != nil || tr.MemoryMiB != tc.memory || (tc.maxConc != 0 && tr.MaxConcurrency != tc.maxConc) {
			t.Errorf("%s traits = %+v, %v; want %d MiB", tc.name, tr, err, tc.memory)
		}
	}
	lc, err := f.AWSConfig(7)
	if err != nil || lc.Region != "eu-west-1" || lc.Concurrency != 7 {
		t.Errorf("AWSConfig(7) = %+v, %v", lc, err)
	}
	az, err := f.Azure()
	if err != nil || az.Config().Key != "secret" {
		t.Errorf("azure key from key_env: %+v, %v", az, err)
	}
	ic, s, err := f.IBMConfig(0)
	if err != nil || ic.APIHost != "https://wsk.example" || ic.Auth != "u:k" || ic.Namespace != "mine" || s.MemoryMiB != 512 {
		t.Errorf("IBMConfig = %+v, %+v, %v; want the host and auth of the property file, the namespace of the section", ic, s, err)
	}
}

func TestCheckWorkerBinary(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), plain, dir, "/bin/prog (deleted)", ""} {
		if err := config.CheckWorkerBinary(path); !errors.Is(err, config.ErrWorkerBinary) {
			t.Errorf("CheckWorkerBinary(%q) = %v, want ErrWorkerBinary", path, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := config.CheckWorkerBinary(exe); err != nil {
		t.Errorf("this test binary: %v", err)
	}
}

// A misspelt key in a section is reported at its line in the file, not
// its line within the section.
func TestStrictDecodingNamesTheFilesLine(t *testing.T) {
	isolate(t)
	text := "# Gale's config\nstorage:\n  s3.region: eu-west-1\n\nbackends:\n  process:\n    concurrency: 2\n  gcp:\n    project: p\n    regin: europe-west1\n"
	f := load(t, text)
	var s config.GCPSection
	wantErr(t, "typo on line 10", f.Decode("gcp", &s), nil, f.Path, "section backends.gcp", "line 10:", "regin")
	var p struct {
		Concurrency int `yaml:"concurrency"`
	}
	if err := f.Decode("process", &p); err != nil || p.Concurrency != 2 {
		t.Errorf("Decode(process) = %+v, %v; want concurrency 2", p, err)
	}
}
