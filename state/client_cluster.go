package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/galeproject/gale/state/internal/wire"
	"github.com/galeproject/gale/state/ring"
)

// clientView is the cluster view a client routes by.
type clientView struct {
	View
	ring *ring.Ring // member addresses, placing ephemeral objects
}

var errStandalone = errors.New("state: standalone server")

func newClientView(v *View) (*clientView, error) {
	addrs := make([]string, 0, len(v.Members))
	for _, a := range v.Members {
		addrs = append(addrs, a)
	}
	r, err := ring.New(addrs, 0)
	if err != nil {
		return nil, fmt.Errorf("state: cluster view without members: %w", err)
	}
	return &clientView{View: *v, ring: r}, nil
}

// fetchView asks the servers at addrs, in turn, for the cluster view. It
// returns errStandalone if the first server that answers is not a cluster
// member.
func (c *Client) fetchView(ctx context.Context, addrs []string) (*clientView, error) {
	var errs []error
	for _, a := range addrs {
		body, err := c.doAt(ctx, a, &request{typ: clusterType, method: "View", flags: wire.FlagPersistent})
		var ce *CallError
		switch {
		case errors.As(err, &ce) && ce.Code == wire.CodeUnknownType:
			return nil, errStandalone
		case err != nil:
			if errors.Is(err, ErrAuth) || ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		var v View
		if err := gobLoad(body, &v); err != nil {
			errs = append(errs, fmt.Errorf("state: %s sent a malformed view: %w", a, err))
			continue
		}
		return newClientView(&v)
	}
	return nil, errors.Join(errs...)
}

// refreshView fetches a newer view from any member (at most every 20 ms;
// concurrent callers share one fetch).
func (c *Client) refreshView(ctx context.Context) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	if time.Since(c.lastRefresh) < 20*time.Millisecond {
		return
	}
	cur := c.view.Load()
	addrs := cur.ring.Nodes()
	addrs = append(addrs, c.cfg.Servers...)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, a := range addrs {
		v, err := c.fetchView(fctx, []string{a})
		if err == nil {
			if v.Epoch >= cur.Epoch || len(v.Members) != len(cur.Members) {
				c.view.Store(v)
			}
			break
		}
	}
	c.lastRefresh = time.Now()
}

// View returns the client's current picture of the cluster, or nil for
// standalone servers.
func (c *Client) View() *View {
	if !c.cluster {
		return nil
	}
	v := c.view.Load().View
	return &v
}

func (c *Client) track(seq uint64) uint64 {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.outstanding[seq] = struct{}{}
	low := seq
	for s := range c.outstanding {
		if s < low {
			low = s
		}
	}
	return low
}

func (c *Client) untrack(seq uint64) {
	c.outMu.Lock()
	delete(c.outstanding, seq)
	c.outMu.Unlock()
}

func retryable(err error) (hint string, ok bool) {
	var ce *CallError
	if errors.As(err, &ce) {
		switch ce.Code {
		case wire.CodeNotLeader:
			return strings.TrimSpace(ce.Message), true
		case wire.CodeUnavailable, wire.CodeShutdown:
			return "", true
		}
		return "", false
	}
	return "", errors.Is(err, ErrConnLost) || errors.Is(err, ErrUnavailable)
}

// doCluster routes a call in a cluster: a replicated call to its
// partition's leader, retried (with its session number, so it runs at
// most once) across leader changes and failovers until it is answered,
// ctx ends or FailoverTimeout passes; an ephemeral call to its owner.
func (c *Client) doCluster(ctx context.Context, r *request) ([]byte, error) {
	if r.flags&wire.FlagPersistent == 0 || isCoordination(r.typ) {
		return c.doEphemeral(ctx, r)
	}
	rr := *r
	rr.flags |= wire.FlagSession
	rr.client = c.id
	rr.seq = c.seq.Add(1)
	rr.low = c.track(rr.seq)
	defer c.untrack(rr.seq)
	deadline := time.Now().Add(c.cfg.FailoverTimeout)
	backoff := 5 * time.Millisecond
	hint := ""
	tried := 0
	var last error
	for {
		v := c.view.Load()
		p := partitionOf(r.typ, r.key, v.Partitions)
		voters := v.Parts[p]
		var live []string
		for _, id := range voters {
			if a, ok := v.Members[id]; ok {
				live = append(live, a)
			}
		}
		if len(live) == 0 {
			c.refreshView(ctx)
			if v2 := c.view.Load(); v2 == v {
				return nil, fmt.Errorf("%w: %s(%q).%s: every replica of its partition %d is gone (members %v); the object is lost",
					ErrUnavailable, r.typ, r.key, r.method, p, voters)
			}
			continue
		}
		addr := hint
		if addr == "" {
			addr = live[tried%len(live)]
		}
		body, err := c.doAt(ctx, addr, &rr)
		if err == nil {
			if addr != live[0] {
				c.learnLeader(v, p, addr)
			}
			return body, nil
		}
		h, ok := retryable(err)
		if !ok {
			return nil, err
		}
		last = err
		tried++
		hint = h
		if ctx.Err() != nil {
			return nil, fmt.Errorf("state: %s(%q).%s: %w (last answer: %v)", r.typ, r.key, r.method, ctx.Err(), last)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s(%q).%s: no replica of partition %d (%s) answered within %v: %w",
				ErrUnavailable, r.typ, r.key, r.method, p, strings.Join(live, ", "), c.cfg.FailoverTimeout, last)
		}
		if hint == "" || tried%len(live) == 0 {
			c.refreshView(ctx)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			if backoff < 40*time.Millisecond {
				backoff *= 2
			}
		}
	}
}

// learnLeader records in the view that addr answered for partition p as
// its leader, so the next calls go there first rather than to a replica
// that is not the leader (a view fetched during a failover names the
// replicas before they have elected one).
func (c *Client) learnLeader(v *clientView, p int, addr string) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	if c.view.Load() != v {
		return // a newer view came meanwhile
	}
	nv := *v
	nv.Parts = append([][]uint64(nil), v.Parts...)
	vs := append([]uint64(nil), v.Parts[p]...)
	for i, id := range vs {
		if v.Members[id] == addr {
			vs[0], vs[i] = vs[i], vs[0]
			break
		}
	}
	nv.Parts[p] = vs
	c.view.Store(&nv)
}

func isCoordination(typ string) bool {
	f, ok := builtins[typ]
	return ok && f.coordination
}

// doEphemeral calls an unreplicated object on the member that holds it in
// the current view.
func (c *Client) doEphemeral(ctx context.Context, r *request) ([]byte, error) {
	hint := ""
	for attempt := 0; ; attempt++ {
		v := c.view.Load()
		addr := hint
		if addr == "" {
			addr = v.ring.Locate(ring.ObjectKey(r.typ, r.key))
		}
		body, err := c.doAt(ctx, addr, r)
		var ce *CallError
		if errors.As(err, &ce) && ce.Code == wire.CodeNotLeader && attempt < 8 {
			hint = strings.TrimSpace(ce.Message)
			c.refreshView(ctx)
			continue
		}
		if errors.Is(err, ErrConnLost) || errors.Is(err, ErrUnavailable) {
			c.refreshView(ctx)
			return nil, fmt.Errorf("%w (%s(%q) is not replicated: it lived on %s, and a call in flight or waiting there is lost with that server)",
				err, r.typ, r.key, addr)
		}
		return body, err
	}
}

// Members returns the cluster's members (id -> address), sorted by id, as
// the client's current view has them.
func (c *Client) Members() []Member {
	if !c.cluster {
		return nil
	}
	v := c.view.Load()
	out := make([]Member, 0, len(v.Members))
	for id, a := range v.Members {
		m := Member{ID: id, Addr: a}
		for _, vs := range v.Parts {
			for i, x := range vs {
				if x == id {
					m.Replicas++
					if i == 0 {
						m.Leads++
					}
				}
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member is one cluster member as a view shows it.
type Member struct {
	ID   uint64
	Addr string
	// Replicas is the number of partitions it holds a replica of; Leads
	// those it leads (as far as the view knows).
	Replicas, Leads int
}

// RefreshView fetches the newest view from the cluster.
func (c *Client) RefreshView(ctx context.Context) {
	if c.cluster {
		c.viewMu.Lock()
		c.lastRefresh = time.Time{}
		c.viewMu.Unlock()
		c.refreshView(ctx)
	}
}

// Leave asks the cluster to remove member id; its replicas move to the
// other members.
func (c *Client) Leave(ctx context.Context, id uint64) error {
	if !c.cluster {
		return errors.New("state: Leave: not connected to a cluster")
	}
	arg := []byte{}
	arg = appendUvarint(arg, id)
	hint := ""
	for attempt := 0; attempt < 20; attempt++ {
		addr := hint
		if addr == "" {
			addrs := c.view.Load().ring.Nodes()
			addr = addrs[attempt%len(addrs)]
		}
		_, err := c.doAt(ctx, addr, &request{typ: clusterType, method: "Leave", flags: wire.FlagPersistent, args: [][]byte{arg}})
		if err == nil {
			c.RefreshView(ctx)
			return nil
		}
		h, ok := retryable(err)
		if !ok {
			return err
		}
		hint = h
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("state: Leave: no membership leader answered")
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
