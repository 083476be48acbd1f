// Package azuritetest starts Azurite, the Azure Storage emulator, for
// tests: the Blob service only, in memory, on a loopback port. Azurite is
// the npm package scripts/install-standins.sh installs under .tools/npm.
//
// This package may import the standard library, testing and
// internal/standin. Start owns the Azurite process and one goroutine
// waiting for it; the test's cleanup stops both.
package azuritetest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/internal/standin"
)

const (
	// Account is Azurite's well-known development storage account.
	Account = "devstoreaccount1"
	// Key is that account's shared key.
	Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// bin finds azurite-blob as scripts/install-standins.sh installs
// it, under .tools/npm at the module root.
func bin(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, ".tools", "npm", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		standin.Missing(t, "Azurite is not installed ("+bin+")")
	}
	return bin
}

// Start runs an in-memory Azurite Blob service on a loopback port for the
// test, stopped when the test ends, and returns its Blob endpoint, e.g.
// http://127.0.0.1:PORT/devstoreaccount1. Without Azurite installed it
// fails the test, or skips it with GALE_STANDINS=skip (internal/standin).
//
// Azurite binds port 0 and the endpoint is the one it says it listens
// on: a port chosen here and bound later could be taken in between by any
// process on the machine, and a test would then talk to that process.
func Start(t *testing.T) string {
	t.Helper()
	path := bin(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
		"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose")
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	// One goroutine reads Azurite's output until it exits (keeping what
	// it printed before it listened, for errors), then waits for it.
	var mu sync.Mutex
	var out bytes.Buffer
	listening := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(r)
		found := false
		for sc.Scan() {
			if found {
				continue
			}
			line := strings.TrimSpace(sc.Text())
			if u, ok := strings.CutPrefix(line, listenLine); ok {
				found = true
				listening <- strings.TrimSuffix(u, "/")
				continue
			}
			mu.Lock()
			out.WriteString(line + "\n")
			mu.Unlock()
		}
		io.Copy(io.Discard, r)
		r.Close()
		cmd.Wait()
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	select {
	case u := <-listening:
		return u + "/" + Account
	case <-exited:
		t.Fatalf("azurite exited: %s", output())
	case <-time.After(60 * time.Second):
		t.Fatalf("azurite did not listen within a minute: %s", output())
	}
	return ""
}

// listenLine starts the line Azurite prints once it listens, followed by
// its URL (even with --silent, which only drops the access log).
const listenLine = "Azurite Blob service successfully listens on "
