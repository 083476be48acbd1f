// Package ring places shared objects on DSO servers by consistent hashing
// with virtual nodes.
//
// Every client and server builds the same Ring from the same membership list,
// so any of them can locate an object's server without asking anyone: there
// is no directory and no broadcast. Each server owns VirtualNodes points on a
// 64-bit hash circle; an object belongs to the first point clockwise from
// the hash of its reference. When a server joins, it takes over only the arcs
// just before its own points (about 1/n of the objects); when one leaves,
// only its objects move, each to its successor.
//
// Hashing uses xxhash (github.com/cespare/xxhash/v2): fast, well distributed
// and stable across processes and platforms, unlike hash/maphash, whose seed
// is per process.
//
// This package imports only the standard library and xxhash, and starts no
// goroutines. A Ring is immutable and safe for concurrent use.
package ring

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// DefaultVirtualNodes is the number of points per server used when New is
// given 0; 160 points keep the load within a few percent of even for small
// clusters.
const DefaultVirtualNodes = 160

// ErrEmpty is returned by New for an empty membership.
var ErrEmpty = errors.New("ring: no nodes")

type point struct {
	hash uint64
	node int
}

// Ring maps keys to nodes.
type Ring struct {
	nodes  []string
	points []point
}

// New builds a ring over nodes (server addresses) with vnodes virtual nodes
// each (0 means DefaultVirtualNodes). The order of nodes does not matter;
// duplicates are an error.
func New(nodes []string, vnodes int) (*Ring, error) {
	if len(nodes) == 0 {
		return nil, ErrEmpty
	}
	if vnodes < 0 {
		return nil, fmt.Errorf("ring: virtual nodes must be >= 0, got %d", vnodes)
	}
	if vnodes == 0 {
		vnodes = DefaultVirtualNodes
	}
	sorted := append([]string(nil), nodes...)
	sort.Strings(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("ring: node %q listed twice", sorted[i])
		}
	}
	r := &Ring{nodes: sorted, points: make([]point, 0, len(sorted)*vnodes)}
	for i, n := range sorted {
		for v := 0; v < vnodes; v++ {
			r.points = append(r.points, point{hash: xxhash.Sum64String(n + "#" + strconv.Itoa(v)), node: i})
		}
	}
	sort.Slice(r.points, func(i, j int) bool {
		if r.points[i].hash != r.points[j].hash {
			return r.points[i].hash < r.points[j].hash
		}
		return r.nodes[r.points[i].node] < r.nodes[r.points[j].node]
	})
	return r, nil
}

// Nodes returns the ring's members, sorted. The caller must not modify it.
func (r *Ring) Nodes() []string { return r.nodes }

// Locate returns the node that owns key.
func (r *Ring) Locate(key string) string {
	return r.nodes[r.LocateIndex(key)]
}

// LocateIndex returns the index in Nodes() of the node that owns key.
func (r *Ring) LocateIndex(key string) int {
	h := xxhash.Sum64String(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	if i == len(r.points) {
		i = 0
	}
	return r.points[i].node
}

// ObjectKey is the string hashed to place the object (typ, key).
func ObjectKey(typ, key string) string { return typ + "\x00" + key }

// LocateN returns the first n distinct nodes clockwise from key's hash (all
// nodes if there are fewer): the replicas of key, the first being its
// primary. Adding a node changes a key's list only where the new node
// enters it; removing one only where it leaves it.
func (r *Ring) LocateN(key string, n int) []string {
	if n > len(r.nodes) {
		n = len(r.nodes)
	}
	h := xxhash.Sum64String(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	out := make([]string, 0, n)
	seen := make([]bool, len(r.nodes))
	for j := 0; len(out) < n && j < len(r.points); j++ {
		p := r.points[(i+j)%len(r.points)]
		if !seen[p.node] {
			seen[p.node] = true
			out = append(out, r.nodes[p.node])
		}
	}
	return out
}
