//go:build !gale_slim || gale_ibm

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/ibm"
	"github.com/galeproject/gale/backends/ibm/controller"
	"github.com/galeproject/gale/internal/textgen"
)

const testWhiskAuth = "gale-test:0123456789abcdef"

// startWhisk runs the loopback OpenWhisk controller whose containers are
// `bin worker` processes, and writes a config file pointing at it.
// The API key comes from an OpenWhisk property file, as the wsk CLI keeps
// it.
func startWhisk(t *testing.T, bin string) (url, configPath, wskprops string) {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Auth, cfg.Command, cfg.Args, cfg.Actions, cfg.MaxContainers = testWhiskAuth, bin, []string{workerCmdName}, []string{"gale"}, 3
	c, err := controller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(context.Background(), ln)
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	url = "http://" + ln.Addr().String()
	configPath = filepath.Join(t.TempDir(), "config.yaml")
	conf := fmt.Sprintf("backends:\n  ibm:\n    api_host: %s\n    concurrency: 3\n    memory_mib: 512\n", url)
	if err := os.WriteFile(configPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	wskprops = filepath.Join(t.TempDir(), "wskprops")
	if err := os.WriteFile(wskprops, []byte("APIHOST=https://elsewhere.invalid\nAUTH="+testWhiskAuth+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return url, configPath, wskprops
}

func TestWordCountOnTheIBMBackendMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	t.Parallel() // runs gale processes; sets no environment
	bin := buildGale(t)
	_, configPath, wskprops := startWhisk(t, bin)
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	tg := textgen.DefaultConfig()
	tg.Size = 1 << 20
	if err := textgen.GenerateFile(context.Background(), corpus, tg); err != nil {
		t.Fatal(err)
	}
	run := func(backend string) (string, map[string][]byte) {
		out := filepath.Join(dir, "out-"+backend)
		cmd := exec.Command(bin, "run", "wordcount", "--input", corpus, "--output", out, "--backend", backend,
			"--partitions", "3", "--chunk-size", "128KiB", "-q", "--top", "0")
		cmd.Env = append(os.Environ(), "GALE_CONFIG="+configPath, "WSK_CONFIG_FILE="+wskprops)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --backend %s: %v\nstdout:\n%s\nstderr:\n%s", backend, err, &stdout, &stderr)
		}
		return stdout.String(), partFiles(t, out)
	}
	_, local := run("local")
	report, remote := run("ibm")
	probeStandIn(t, bin, "ibm", "GALE_CONFIG="+configPath, "WSK_CONFIG_FILE="+wskprops)
	if !strings.Contains(report, "on ibm") {
		t.Errorf("the report does not name the ibm backend:\n%s", report)
	}
	if len(remote) != len(local) {
		t.Fatalf("ibm wrote %d part files, local %d", len(remote), len(local))
	}
	for name, want := range local {
		if !bytes.Equal(remote[name], want) {
			t.Errorf("%s differs between the ibm and local backends", name)
		}
	}
}

// TestDeployIBMThenInvoke deploys the gale binary through the deploy
// command to the loopback controller, which then runs the deployed exec.
func TestDeployIBMThenInvoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	bin := buildGale(t)
	url, configPath, wskprops := startWhisk(t, bin)
	t.Setenv("GALE_CONFIG", configPath)
	t.Setenv("WSK_CONFIG_FILE", wskprops)
	cmd := newDeployIBMCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--binary", bin, "--action", "deployed", "--timeout", "30s"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "deployed action _/deployed: 512 MiB, timeout 30s") {
		t.Errorf("deploy said %q", out.String())
	}
	cfg := ibm.DefaultConfig()
	cfg.APIHost, cfg.Auth, cfg.Action = url, testWhiskAuth, "deployed"
	b, err := ibm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The worker routes by kind; an unknown kind fails inside the
	// deployed worker, which proves the deployed exec served it.
	_, err = b.Invoke(context.Background(), backends.Task{ID: "t1", Payload: []byte(`{"kind":"no-such-kind"}`)})
	if err == nil || !strings.Contains(err.Error(), "no-such-kind") {
		t.Errorf("invoking the deployed action: %v", err)
	}
}
