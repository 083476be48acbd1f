//go:build !gale_slim || gale_azure

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/azuritetest"
	"github.com/galeproject/gale/backends/config"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/textgen"
)

// Word count on the Azure backend, through a local Functions host running
// the gale binary as its custom handler (two instances), in both of the
// host's modes, matches the local backend's output file for file; in
// forwarding mode its input and output are on Blob Storage (Azurite).
func TestWordCountOnTheAzureBackendMatchesLocal(t *testing.T) {
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
	run := func(name, backend, config, input, out string) (string, map[string][]byte) {
		if out == "" {
			out = filepath.Join(dir, "out-"+name)
		}
		conf := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "wordcount", "--input", input, "--output", out, "--backend", backend,
			"--workers", "4", "--partitions", "4", "--chunk-size", "256KiB", "-q", "--top", "0")
		cmd.Env = append(os.Environ(), "GALE_CONFIG="+conf)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --backend %s (%s): %v\nstdout:\n%s\nstderr:\n%s", backend, name, err, &stdout, &stderr)
		}
		if strings.Contains(out, "://") {
			return stdout.String(), nil
		}
		return stdout.String(), partFiles(t, out)
	}
	_, local := run("local", "local", "{}\n", corpus, "")
	// In forwarding mode the job reads and writes Blob Storage (Azurite).
	endpoint := azuritetest.Start(t)
	st, err := azure.NewBlob(azure.BlobConfig{Endpoint: endpoint, Key: azuritetest.Key}, "data", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Container().Create(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(corpus)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Put(t.Context(), "corpus.txt", f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	storage := "storage:\n  azblob.endpoint: " + endpoint + "\n  azblob.key: " + azuritetest.Key + "\n"
	for _, mode := range []string{"payload", "forwarding"} {
		config := "backends:\n  azure:\n    local_host:\n      instances: 2\n      forwarding: false\n"
		in, out := corpus, ""
		if mode == "forwarding" {
			config = "backends:\n  azure:\n    local_host:\n      instances: 2\n      forwarding: true\n" + storage
			in, out = "azblob://data/corpus.txt", "azblob://data/out"
		}
		report, az := run(mode, "azure", config, in, out)
		if mode == "payload" {
			probeStandIn(t, bin, "azure", "GALE_CONFIG="+filepath.Join(dir, mode+".yaml"))
		}
		if mode == "forwarding" {
			az = blobParts(t, st, "out/")
		}
		if !strings.Contains(report, "on azure") || !strings.Contains(report, "estimated cost on azure") {
			t.Errorf("%s: the report does not name the backend and its cost:\n%s", mode, report)
		}
		if len(az) != len(local) {
			t.Fatalf("%s: azure wrote %d part files, local %d", mode, len(az), len(local))
		}
		for name, want := range local {
			if !bytes.Equal(az[name], want) {
				t.Errorf("%s: %s differs between the azure and local backends", mode, name)
			}
		}
	}
}

// blobParts reads the part files under prefix.
func blobParts(t *testing.T, st *azure.Blob, prefix string) map[string][]byte {
	t.Helper()
	objs, err := objstore.ListAll(t.Context(), st, prefix)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{}
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		if !strings.HasPrefix(name, "part-") {
			continue
		}
		// Object-store parts are part-NNNNN-JOB; runs differ in JOB.
		name = name[:len("part-00000")]
		rc, err := st.Get(t.Context(), o.Key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		parts[name] = b
	}
	return parts
}

func TestAzureConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"backends:\n  azure: {}\n", "set app"},
		{"backends:\n  azure:\n    app: -x\n", `app "-x"`},
		{"backends:\n  azure:\n    ap: x\n", "backends.azure"},
		{"backends:\n  azure:\n    app: x\n    local_host: {}\n", "keep one"},
	} {
		writeConfig(t, tc.text)
		_, _, err := openBackend(t.Context(), "azure", backendEnv{Stderr: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
	writeConfig(t, "backends:\n  azure:\n    app: my-app\n    concurrency: 18\n")
	b, _, err := openBackend(t.Context(), "azure", backendEnv{Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tr, err := config.Traits(t.Context(), "azure", nil)
	if err != nil || tr.MemoryMiB != 1536 || tr.MaxConcurrency != 200 {
		t.Errorf("traits %+v %v", tr, err)
	}
}

// gale deploy azure --zip-only writes the custom-handler app package: the
// binary given, host.json starting it as `handler worker`, and the
// function's function.json, exactly as azure.Package lays them out.
func TestDeployAzureZipOnly(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "gale-linux")
	if err := os.WriteFile(bin, []byte("\x7fELF not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, "backends:\n  azure:\n    app: my-app\n    function: jobs\n    deploy:\n      max_concurrent_requests: 1\n")
	out := filepath.Join(dir, "app.zip")
	cmd := newDeployAzureCmd()
	cmd.SetArgs([]string{"--binary", bin, "--zip-only", out})
	var stdout bytes.Buffer
	cmd.SetOut(&stdout)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	app := azure.AppConfig{Arguments: []string{"worker"}, Functions: []string{"jobs"}, MaxConcurrentRequests: 1}
	if err := azure.PackageFile(&want, app, bin); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("gale deploy azure --zip-only wrote %d bytes that differ from azure.Package's %d", len(got), want.Len())
	}
	cmd = newDeployAzureCmd()
	cmd.SetArgs([]string{"--binary", bin})
	cmd.SetOut(&stdout)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "resource_group") {
		t.Errorf("deploy without resource group: %v", err)
	}
}
