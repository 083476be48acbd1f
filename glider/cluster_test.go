package glider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/glider/internal/wire"
)

func TestStorageServerLeavesAndJoins(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.StorageServers = 2
	cl := startCluster(t, cfg)
	c := dial(t, cl, "members")
	ctx := testCtx(t)

	// More blocks than the reader keeps in flight, so some are still to
	// be asked for when their server leaves.
	data := pattern(24*DefaultBlockSize, 1)
	if err := c.WriteFile(ctx, "/f", "", data); err != nil {
		t.Fatal(err)
	}
	n, err := c.lookup(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]int{}
	for _, b := range n.Blocks {
		servers[b.Addr]++
	}
	if len(servers) != 2 || servers[cl.Storage()[0].Addr()] != 12 {
		t.Fatalf("blocks not spread round-robin: %v", servers)
	}
	// A reader is half way through when a server leaves: it gets an
	// error, not a hang and not a short file.
	r, err := c.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	gone := cl.Storage()[0]
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read %d more bytes from a file whose server left, without error", len(got))
	}
	if !errors.Is(err, ErrServerGone) && !errors.Is(err, ErrNotFound) {
		t.Fatalf("reader error %v, want ErrServerGone", err)
	}
	waitFor(t, func() bool {
		_, err := c.Lookup(ctx, "/f")
		return errors.Is(err, ErrDataLost)
	})
	if _, err := c.Open(ctx, "/f"); !errors.Is(err, ErrDataLost) || !strings.Contains(err.Error(), gone.Addr()) {
		t.Fatalf("open of a file with lost blocks: %v", err)
	}
	// New files go to the remaining server; then a new server joins and
	// takes its share.
	if err := c.WriteFile(ctx, "/g", "", data); err != nil {
		t.Fatal(err)
	}
	joined, err := cl.AddStorage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx, "/h", "", data); err != nil {
		t.Fatal(err)
	}
	n, err = c.lookup(ctx, "/h")
	if err != nil {
		t.Fatal(err)
	}
	onNew := 0
	for _, b := range n.Blocks {
		if b.Addr == joined.Addr() {
			onNew++
		}
	}
	if onNew != 12 {
		t.Fatalf("%d of 24 blocks on the server that joined, want 3", onNew)
	}
	for _, p := range []string{"/g", "/h"} {
		if b, err := c.ReadFile(ctx, p); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := c.Delete(ctx, "/f"); err != nil {
		t.Fatalf("deleting a file with lost blocks: %v", err)
	}
}

func TestActiveServerLeavesAndJoins(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.ActiveServers = 3
	reg := DefaultRegistry()
	reg.Register("echo", func() Action { return &echo{} })
	cfg.Registry = reg
	cl := startCluster(t, cfg)
	c := dial(t, cl, "members")
	ctx := testCtx(t)

	// Actions are placed round-robin.
	per := map[string]int{}
	for i := range 6 {
		p := fmt.Sprintf("/a%d", i)
		if _, err := c.CreateAction(ctx, p, "echo", ActionOptions{}); err != nil {
			t.Fatal(err)
		}
		n, err := c.lookup(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		per[n.Addr]++
	}
	if len(per) != 3 {
		t.Fatalf("placement %v, want 2 actions on each of 3 servers", per)
	}
	for _, k := range per {
		if k != 2 {
			t.Fatalf("placement %v, want 2 actions on each of 3 servers", per)
		}
	}
	// A writer and a reader have streams open when their server leaves.
	n0, _ := c.lookup(ctx, "/a0")
	var victim *Active
	for _, a := range cl.Active() {
		if a.Addr() == n0.Addr {
			victim = a
		}
	}
	if err := c.WriteAction(ctx, "/a0", pattern(20*DefaultBlockSize, 3)); err != nil {
		t.Fatal(err)
	}
	// The reader's OnRead holds the action (its output waits for the
	// reader); the writer's OnWrite waits for the action lock.
	r, err := c.ActionReader(ctx, "/a0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	w, err := c.ActionWriter(ctx, "/a0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, DefaultBlockSize+1)); err != nil {
		t.Fatal(err)
	}
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrServerGone) && !errors.Is(err, ErrStreamBroken) {
		t.Fatalf("reader after its server left: %v", err)
	}
	_, err = w.Write(make([]byte, 20*DefaultBlockSize))
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, ErrServerGone) && !errors.Is(err, ErrStreamBroken) {
		t.Fatalf("writer after its server left: %v", err)
	}
	waitFor(t, func() bool {
		_, err := c.Lookup(ctx, "/a0")
		return errors.Is(err, ErrServerGone)
	})
	if _, err := c.ActionWriter(ctx, "/a0"); !errors.Is(err, ErrServerGone) {
		t.Fatalf("opening an action whose server left: %v", err)
	}
	if err := c.Delete(ctx, "/a0"); err != nil {
		t.Fatal(err)
	}
	// The others still work, and a new server takes new actions.
	if err := c.WriteAction(ctx, "/a1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	joined, err := cl.AddActive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range 3 {
		p := fmt.Sprintf("/b%d", i)
		if _, err := c.CreateAction(ctx, p, "echo", ActionOptions{}); err != nil {
			t.Fatal(err)
		}
		n, _ := c.lookup(ctx, p)
		found = found || n.Addr == joined.Addr()
		if err := c.WriteAction(ctx, p, []byte(p)); err != nil {
			t.Fatal(err)
		}
		if out, err := c.ReadAction(ctx, p); err != nil || string(out) != p {
			t.Fatalf("%s: %q %v", p, out, err)
		}
	}
	if !found {
		t.Fatal("no action placed on the server that joined")
	}
}

func TestCapacityLimits(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.Storage = DefaultStorageConfig()
	cfg.Storage.Capacity = 4 * DefaultBlockSize
	cfg.Active = DefaultActiveConfig()
	cfg.Active.Slots = 2
	cl := startCluster(t, cfg)
	c := dial(t, cl, "cap")
	ctx := testCtx(t)
	if err := c.WriteFile(ctx, "/big", "", make([]byte, 5*DefaultBlockSize)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over capacity: %v", err)
	}
	if err := c.WriteFile(ctx, "/fits", "", make([]byte, 4*DefaultBlockSize)); err != nil {
		t.Fatalf("the failed write did not release its blocks: %v", err)
	}
	for i := range 2 {
		if _, err := c.CreateAction(ctx, fmt.Sprintf("/a%d", i), ActionCount, ActionOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateAction(ctx, "/a2", ActionCount, ActionOptions{}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("third action on two slots: %v", err)
	}
	if err := c.Delete(ctx, "/a0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAction(ctx, "/a2", ActionCount, ActionOptions{}); err != nil {
		t.Fatalf("slot not released by delete: %v", err)
	}
}

func TestMetadataServerLeaves(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "m")
	ctx := testCtx(t)
	if err := c.WriteFile(ctx, "/f", "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := cl.meta.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "/f"); !errors.Is(err, ErrServerGone) {
		t.Fatalf("lookup without a metadata server: %v", err)
	}
	if _, err := cl.Dial(ctx, "m"); !errors.Is(err, ErrServerGone) {
		t.Fatalf("dial without a metadata server: %v", err)
	}
}

func TestTenantIsolation(t *testing.T) {
	reg := DefaultRegistry()
	reg.Register("echo", func() Action { return &echo{} })
	cl := startCluster(t, ClusterConfig{StorageServers: 1, ActiveServers: 1, Registry: reg})
	ctx := testCtx(t)
	if _, err := Dial(ctx, ClientConfig{Meta: cl.MetaAddr(), Namespace: "alice", Token: cl.Token("bob")}); !errors.Is(err, ErrDenied) {
		t.Fatalf("bob's token opened alice's namespace: %v", err)
	}
	_, err := Dial(ctx, ClientConfig{Meta: cl.MetaAddr(), Namespace: "alice", Token: "guess"})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("a guessed token: %v", err)
	}
	// The server's reason arrives once, not prefixed by the client again.
	if msg := err.Error(); strings.Count(msg, "access denied") != 1 || !strings.Contains(msg, `wrong token for namespace "alice"`) {
		t.Errorf("a guessed token: %q, want one \"access denied\" and the reason", msg)
	}
	alice, bob := dial(t, cl, "alice"), dial(t, cl, "bob")
	if err := alice.WriteFile(ctx, "/secret", "", []byte("alice's data")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateAction(ctx, "/act", "echo", ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.WriteAction(ctx, "/act", []byte("alice's state")); err != nil {
		t.Fatal(err)
	}
	if kids, err := bob.List(ctx, "/"); err != nil || len(kids) != 0 {
		t.Fatalf("bob lists %v (%v)", kids, err)
	}
	for _, err := range []error{
		func() error { _, err := bob.Lookup(ctx, "/secret"); return err }(),
		func() error { _, err := bob.ReadFile(ctx, "/secret"); return err }(),
		func() error { _, err := bob.ReadAction(ctx, "/act"); return err }(),
		bob.WriteAction(ctx, "/act", []byte("x")),
		bob.Delete(ctx, "/secret"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("bob reached alice's node: %v", err)
		}
	}
	// Bob's own /secret is another node.
	if err := bob.WriteFile(ctx, "/secret", "", []byte("bob's")); err != nil {
		t.Fatal(err)
	}
	if b, _ := alice.ReadFile(ctx, "/secret"); string(b) != "alice's data" {
		t.Fatalf("alice's file now holds %q", b)
	}
	// Going around the metadata server does not help: bob asks alice's
	// storage and active servers directly for her block and her action.
	f, err := alice.lookup(ctx, "/secret")
	if err != nil {
		t.Fatal(err)
	}
	d, err := bob.dataConn(ctx, f.Blocks[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.call(ctx, &wire.Request{Op: wire.OpReadBlock, A: f.Blocks[0].ID, C: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob read alice's block: %v", err)
	}
	if _, err := d.call(ctx, &wire.Request{Op: wire.OpWriteBlock, A: f.Blocks[0].ID, B: f.Blocks[0].Len, Data: []byte("!")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob appended to alice's block: %v", err)
	}
	if _, err := d.call(ctx, &wire.Request{Op: wire.OpFreeBlocks, Namespace: "alice", IDs: []uint64{f.Blocks[0].ID}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bob freed alice's block: %v", err)
	}
	a, err := alice.lookup(ctx, "/act")
	if err != nil {
		t.Fatal(err)
	}
	da, err := bob.dataConn(ctx, a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := da.call(ctx, &wire.Request{Op: wire.OpStreamOpen, A: a.ID, Flags: wire.FlagRead}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob opened alice's action: %v", err)
	}
	if _, err := bob.meta.call(ctx, &wire.Request{Op: wire.OpJoin, Name: roleStorage, Class: "dram", Addr: "x:1", A: 1, B: DefaultBlockSize}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a client joined as a server: %v", err)
	}
	// Servers must present the cluster secret.
	_, err = dialConn(ctx, cl.MetaAddr(), wire.Hello{Role: wire.RoleServer, Token: []byte("not the secret at all")}, DefaultMaxFrame, 0, nil)
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("a server with a wrong secret: %v", err)
	}
	// Accounting is per namespace too.
	sa, _ := alice.ClusterStats(ctx)
	sb, _ := bob.ClusterStats(ctx)
	if sa.BytesStored != int64(len("alice's data")) || sb.BytesStored != int64(len("bob's")) || sa.Actions != 1 || sb.Actions != 0 {
		t.Fatalf("stats alice %+v bob %+v", sa, sb)
	}
	if b, _ := alice.ReadAction(ctx, "/act"); string(b) != "alice's state" {
		t.Fatalf("alice's action holds %q", b)
	}
}

func TestServeRoles(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	secret := "role-test-secret-0123456789"
	addrs := make(chan string, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		errs <- ServeRole(ctx, RoleConfig{Role: RoleMeta, Secret: secret, Started: func(a string) { addrs <- a }})
	})
	meta := <-addrs
	wg.Go(func() {
		errs <- ServeRole(ctx, RoleConfig{Role: RoleStorage, Meta: meta, Secret: secret, BlockSize: 64 << 10, Capacity: 64 << 20})
	})
	wg.Go(func() {
		errs <- ServeRole(ctx, RoleConfig{Role: RoleActive, Meta: meta, Secret: secret, Slots: 4})
	})
	c, err := Dial(ctx, ClientConfig{Meta: meta, Namespace: "roles", Token: NamespaceToken(secret, "roles")})
	if err != nil {
		t.Fatal(err)
	}
	// The servers join asynchronously; wait until both did.
	waitFor(t, func() bool {
		st, err := c.ClusterStats(ctx)
		return err == nil && st.StorageServers == 1 && st.ActiveServers == 1
	})
	data := pattern(300_000, 4)
	if err := c.WriteFile(ctx, "/f", "", data); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.lookup(ctx, "/f"); len(n.Blocks) != 5 {
		t.Fatalf("%d blocks of 64 KiB for 300,000 bytes", len(n.Blocks))
	}
	if got, err := c.ReadFile(ctx, "/f"); err != nil || !bytes.Equal(got, data) {
		t.Fatal(err)
	}
	if _, err := c.CreateAction(ctx, "/c", ActionCount, ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrServerGone) {
			t.Errorf("role server: %v", err)
		}
	}
	if err := ServeRole(ctx, RoleConfig{Role: "cache"}); err == nil || !strings.Contains(err.Error(), "cache") {
		t.Fatalf("unknown role: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	var sc StorageConfig
	err := sc.Validate()
	for _, want := range []string{"Secret", "Meta"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("storage config: %v lacks %s", err, want)
		}
	}
	ac := DefaultActiveConfig()
	ac.Meta, ac.Secret, ac.ChunkSize, ac.Class = "x:1", strings.Repeat("s", 16), 4<<20, "bad class!"
	err = ac.Validate()
	for _, want := range []string{"MaxFrame", "Class"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("active config: %v lacks %s", err, want)
		}
	}
	var cc ClientConfig
	err = cc.Validate()
	for _, want := range []string{"Meta", "Namespace", "Token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("client config: %v lacks %s", err, want)
		}
	}
	mc := DefaultMetaConfig()
	mc.Secret = "short"
	if err := mc.Validate(); err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Errorf("meta config: %v", err)
	}
}

// A config's problems are reported at once, on one line.
func TestConfigErrorsOnOneLine(t *testing.T) {
	c := StorageConfig{BlockSize: -1}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "Secret") ||
		!strings.Contains(err.Error(), "Meta") {
		t.Errorf("Validate = %q, want the missing Secret and Meta on one line", err)
	}
}
