// Package azuritetest starts Azurite, the Azure Storage emulator, for
// tests: the Blob service only, in memory, on a loopback port. Azurite is
// the npm package scripts/install-standins.sh installs under .tools/npm.
//
// This package may import the standard library, testing and
// internal/standin. Start owns the Azurite process and one goroutine
// waiting for it; the test's cleanup stops both.
package azuritetest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
func Start(t *testing.T) string {
	t.Helper()
	path := bin(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var out bytes.Buffer
	cmd := exec.Command(path, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--inMemoryPersistence",
		"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("azurite exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("azurite did not listen on %s within a minute: %s", addr, out.String())
		}
	}
	return "http://" + addr + "/" + Account
}
