package state

import (
	"fmt"
	"sort"

	"github.com/galeproject/gale/state/internal/wire"
)

// partSM is one partition's replicated state machine: its objects and the
// sessions that make a retried call run at most once. Only the
// replication loop touches it, applying committed entries in log order on
// every replica, so it needs no locks; methods must be deterministic.
type partSM struct {
	objects  map[string]*entry
	sessions map[uint64]*session
	applied  uint64 // calls applied, the sessions' clock
}

// session remembers the results of a client's calls that may still be
// retried (sequence numbers at or above the client's Low).
type session struct {
	Results map[uint64]sessResult
	Last    uint64
}

type sessResult struct {
	Code uint8
	Body []byte
}

// maxSessions bounds the sessions a partition keeps; the least recently
// used goes first (its client is long gone, or will get CodeUnavailable
// answers replayed as new calls — see docs/state.md).
const maxSessions = 10000

func newPartSM() *partSM {
	return &partSM{objects: map[string]*entry{}, sessions: map[uint64]*session{}}
}

// execute applies one call.
func (p *partSM) execute(s *Server, c *wire.Call) ([]byte, *status) {
	p.applied++
	var sess *session
	if c.Flags&wire.FlagSession != 0 && c.Client != 0 {
		sess = p.sessions[c.Client]
		if sess == nil {
			sess = &session{Results: map[uint64]sessResult{}}
			p.sessions[c.Client] = sess
			p.evict()
		}
		sess.Last = p.applied
		for seq := range sess.Results {
			if seq < c.Low {
				delete(sess.Results, seq)
			}
		}
		if r, ok := sess.Results[c.Seq]; ok {
			if r.Code == wire.CodeOK {
				return r.Body, nil
			}
			return nil, &status{code: r.Code, msg: string(r.Body)}
		}
	}
	body, st := p.run(s, c)
	if sess != nil {
		r := sessResult{Code: wire.CodeOK, Body: append([]byte(nil), body...)}
		if st != nil {
			r = sessResult{Code: st.code, Body: []byte(st.msg)}
		}
		sess.Results[c.Seq] = r
	}
	return body, st
}

func (p *partSM) run(s *Server, c *wire.Call) ([]byte, *status) {
	id := objectID(c.Type, c.Key)
	e := p.objects[id]
	if e == nil {
		obj, st := s.newObjectOf(c.Type, c.Init)
		if st != nil {
			return nil, st
		}
		e = &entry{typ: c.Type, key: c.Key, init: append([]byte(nil), c.Init...), persistent: true, obj: obj}
		p.objects[id] = e
	}
	if len(c.Init) > 0 {
		if st := e.obj.checkInit(c.Init); st != nil {
			return nil, st
		}
	}
	body, st, _ := e.obj.invoke(c.Method, c.Args, nil)
	return body, st
}

func (p *partSM) evict() {
	if len(p.sessions) <= maxSessions {
		return
	}
	var oldest uint64
	var at uint64 = 1<<64 - 1
	for id, s := range p.sessions {
		if s.Last < at || s.Last == at && id < oldest {
			oldest, at = id, s.Last
		}
	}
	delete(p.sessions, oldest)
}

// partImage is a partition's snapshot.
type partImage struct {
	Objects  []snapRecord
	Sessions map[uint64]*session
	Applied  uint64
}

func (p *partSM) marshal() ([]byte, error) {
	img := partImage{Sessions: p.sessions, Applied: p.applied}
	ids := make([]string, 0, len(p.objects))
	for id := range p.objects {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := p.objects[id]
		b, err := e.obj.marshal()
		if err != nil {
			return nil, fmt.Errorf("state: snapshot of %s %q: %w", e.typ, e.key, err)
		}
		img.Objects = append(img.Objects, snapRecord{Type: e.typ, Key: e.key, Init: e.init, State: b})
	}
	return gobBytes(img)
}

func (p *partSM) restore(s *Server, data []byte) error {
	var img partImage
	if err := gobLoad(data, &img); err != nil {
		return fmt.Errorf("state: partition snapshot: %w", err)
	}
	objects := map[string]*entry{}
	for _, r := range img.Objects {
		obj, st := s.newObjectOf(r.Type, r.Init)
		if st != nil {
			return fmt.Errorf("state: partition snapshot: object %s %q: %s", r.Type, r.Key, st.msg)
		}
		if err := obj.unmarshal(r.State); err != nil {
			return fmt.Errorf("state: partition snapshot: object %s %q: %w", r.Type, r.Key, err)
		}
		objects[objectID(r.Type, r.Key)] = &entry{typ: r.Type, key: r.Key, init: r.Init, persistent: true, obj: obj}
	}
	p.objects = objects
	p.sessions = img.Sessions
	if p.sessions == nil {
		p.sessions = map[uint64]*session{}
	}
	for _, s := range p.sessions {
		if s.Results == nil {
			s.Results = map[uint64]sessResult{}
		}
	}
	p.applied = img.Applied
	return nil
}
