package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale/backends/azure/azuritetest"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

var containerSeq atomic.Int64

// newContainer creates a fresh container and returns a store on it.
func newContainer(t *testing.T, endpoint, prefix string) *Blob {
	t.Helper()
	name := fmt.Sprintf("gale-test-%d", containerSeq.Add(1))
	st, err := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuritetest.Key, BlockSize: 1 << 20}, name, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Container().Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBlobConformance(t *testing.T) {
	endpoint := azuritetest.Start(t)
	// Under a prefix, which exercises key mapping; TestBlobPaginationAndErrors
	// also reads the container's root.
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newContainer(t, endpoint, "jobs/42") })
}

func TestBlobPaginationAndErrors(t *testing.T) {
	endpoint := azuritetest.Start(t)
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
	other, err := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuritetest.Key}, st.Bucket(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Put(ctx, "outside", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	all, err := objstore.ListAll(ctx, st, "")
	if err != nil || len(all) != 7 {
		t.Errorf("ListAll under the prefix: %d objects, %v", len(all), err)
	}

	missing, _ := NewBlob(BlobConfig{Endpoint: endpoint, Key: azuritetest.Key}, "no-such-container", "")
	err = missing.Put(ctx, "k", strings.NewReader("x"))
	if !errors.Is(err, ErrNoSuchContainer) || !strings.Contains(err.Error(), "az storage container create") {
		t.Errorf("missing container: %v", err)
	}
	bad, _ := NewBlob(BlobConfig{Endpoint: endpoint, Key: "AAAA" + azuritetest.Key[4:]}, st.Bucket(), "")
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
	if _, err := NewBlob(BlobConfig{Account: "acct", Key: azuritetest.Key}, "Bad", ""); err == nil {
		t.Error("an invalid container name was accepted")
	}
	st, err := NewBlob(BlobConfig{Account: "acct", Key: azuritetest.Key}, "data", "/in/")
	if err != nil || st.String() != "azblob://data/in" {
		t.Errorf("store %v %v", st, err)
	}
}
