package gliderstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/glider/gliderstore"
)

func TestConformance(t *testing.T) {
	cl, err := glider.NewCluster(glider.ClusterConfig{StorageServers: 2, ActiveServers: 1,
		Storage: glider.StorageConfig{BlockSize: 1 << 20, Capacity: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
	})
	n := 0
	for _, root := range []string{"", "some/prefix"} {
		t.Run(fmt.Sprintf("root=%q", root), func(t *testing.T) {
			objstoretest.Run(t, func(t *testing.T) objstore.Store {
				n++
				ns := fmt.Sprintf("conf-%d", n) // an empty namespace per subtest
				st, err := gliderstore.New(gliderstore.Config{Meta: cl.MetaAddr(), Namespace: ns, Token: cl.Token(ns), Root: root})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { clear(t, cl, ns) })
				return st
			})
		})
	}
}

// clear removes everything from namespace ns, freeing its blocks.
func clear(t *testing.T, cl *glider.Cluster, ns string) {
	ctx := context.Background()
	c, err := cl.Dial(ctx, ns)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	kids, err := c.List(ctx, "/")
	if err != nil {
		t.Error(err)
	}
	for _, k := range kids {
		if err := c.DeleteAll(ctx, k.Path); err != nil {
			t.Error(err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := gliderstore.New(gliderstore.Config{Root: "/abs"})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"Meta", "Namespace", "Token", "Root"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Every problem with a Config is reported at once, on one line.
func TestConfigErrorsOnOneLine(t *testing.T) {
	_, err := gliderstore.New(gliderstore.Config{})
	if err == nil {
		t.Fatal("an empty config was accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Count(msg, "gliderstore:") != 1 {
		t.Errorf("error %q: want one line naming the package once", msg)
	}
	for _, want := range []string{"Meta", "glider.namespace", "glider.token"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
}
