package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

// Azurite's well-known development account.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azuriteBin finds azurite-blob as scripts/install-standins.sh installs
// it, under .tools/npm at the module root.
func azuriteBin(t *testing.T) string {
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
		msg := "Azurite is not installed (" + bin + "); run scripts/install-standins.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// startAzurite runs an in-memory Azurite Blob service on a loopback port
// for the test and returns its endpoint.
func startAzurite(t *testing.T) string {
	t.Helper()
	bin := azuriteBin(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--inMemoryPersistence",
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
	return "http://" + addr + "/" + azuriteAccount
}

var containerSeq atomic.Int64

// newContainer creates a fresh container and returns a store on it.
func newContainer(t *testing.T, endpoint, prefix string) *Blob {
	t.Helper()
	name := fmt.Sprintf("gale-test-%d", containerSeq.Add(1))
	st, err := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuriteKey, BlockSize: 1 << 20}, name, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Container().Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBlobConformance(t *testing.T) {
	endpoint := startAzurite(t)
	// Under a prefix, which exercises key mapping; TestBlobPaginationAndErrors
	// also reads the container's root.
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newContainer(t, endpoint, "jobs/42") })
}

func TestBlobPaginationAndErrors(t *testing.T) {
	endpoint := startAzurite(t)
	st := newContainer(t, endpoint, "p")
	ctx := context.Background()
	for i := range 7 {
		if err := st.Put(ctx, fmt.Sprintf("k%02d", i), strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	token, pages := "", 0
	for {
		page, err := st.List(ctx, "k", token, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Objects {
			keys = append(keys, o.Key)
		}
		if page.Next == "" {
			break
		}
		token = page.Next
	}
	if pages != 3 || strings.Join(keys, ",") != "k00,k01,k02,k03,k04,k05,k06" {
		t.Errorf("%d pages, keys %v", pages, keys)
	}
	// A blob outside the prefix is not listed.
	other, _ := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuriteKey}, st.container, "")
	other.Put(ctx, "outside", strings.NewReader("y"))
	all, err := objstore.ListAll(ctx, st, "")
	if err != nil || len(all) != 7 {
		t.Errorf("ListAll under the prefix: %d objects, %v", len(all), err)
	}

	missing, _ := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuriteKey}, "no-such-container", "")
	err = missing.Put(ctx, "k", strings.NewReader("x"))
	if !errors.Is(err, ErrNoSuchContainer) || !strings.Contains(err.Error(), "az storage container create") {
		t.Errorf("missing container: %v", err)
	}
	bad, _ := NewBlob(BlobConfig{Endpoint: endpoint, Key: "AAAA" + azuriteKey[4:]}, st.container, "")
	if _, err := bad.Stat(ctx, "p/k00"); err == nil {
		t.Error("a wrong key was accepted")
	}
	rc, err := st.Get(ctx, "k01", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "x" {
		t.Errorf("read %q", b)
	}
}

func TestBlobConfig(t *testing.T) {
	err := BlobConfig{Account: "Bad_Name", Endpoint: "ftp://x", BlockSize: 10, Concurrency: -1}.Validate()
	for _, want := range []string{"azblob.account", "azblob.endpoint", "azblob.block_size", "azblob.concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %s", err, want)
		}
	}
	if err := (BlobConfig{}).Validate(); err == nil {
		t.Error("an empty config was accepted")
	}
	for ep, want := range map[string]string{
		"https://acct.blob.core.windows.net":      "acct",
		"http://127.0.0.1:10000/devstoreaccount1": "devstoreaccount1",
	} {
		if _, got := (BlobConfig{Endpoint: ep}).endpoint(); got != want {
			t.Errorf("account of %s: %s, want %s", ep, got, want)
		}
	}
	if _, err := NewBlob(BlobConfig{Account: "acct", Key: azuriteKey}, "Bad", ""); err == nil {
		t.Error("an invalid container name was accepted")
	}
	st, err := NewBlob(BlobConfig{Account: "acct", Key: azuriteKey}, "data", "/in/")
	if err != nil || st.String() != "azblob://data/in" {
		t.Errorf("store %v %v", st, err)
	}
}
