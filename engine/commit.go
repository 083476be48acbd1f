package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends/objstore"
)

// The commit protocol (docs/engine.md, "Committing output").
//
// A job stages each text sink's output beside it: a hidden sibling
// directory .OUT.gale-JOB for a local output, OUT/_temporary/JOB/ on an
// object store. A job record (jobRecord) names the job's process and is
// refreshed while the job runs, so that a later job, or gale gc, can tell
// a live job's staging area, which it must leave alone, from a dead one's,
// which it removes. The commit itself runs under a context no signal
// cancels (DefaultCommitTimeout bounds it) and switches from the previous
// output to the new one in one atomic step:
//
//   - filesystem: the staging directory, holding the parts and _SUCCESS,
//     is exchanged with the output directory (renameat2 RENAME_EXCHANGE),
//     and the previous output, now in the staging directory, is removed;
//   - object store: the parts are moved to part-NNNNN-JOB beside the
//     previous output's, then one Put of _SUCCESS, a manifest listing them,
//     switches readers over; superseded objects are deleted after it.

const (
	// DefaultCommitTimeout bounds a job's commit (and its cleanup), which
	// runs to the end even when the job's context is cancelled.
	DefaultCommitTimeout = 10 * time.Minute
	// HeartbeatInterval is how often a running job refreshes its job
	// records.
	HeartbeatInterval = time.Minute
	// StaleAfter is how long after its last heartbeat a job on another
	// host (or a process that cannot be checked) is taken for dead. A job
	// on this host is dead as soon as its process is gone.
	StaleAfter = 10 * time.Minute
	// jobRecordKey names the job record in an object-store staging area
	// (TemporaryDir/JOB/_JOB) and in a temporary store.
	jobRecordKey = "_JOB"
)

// jobRecord identifies the process running a job.
type jobRecord struct {
	Job       string    `json:"job"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Instance  string    `json:"instance"` // this process's random token
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

var (
	// processInstance tells this process's job records from those of an
	// earlier process with the same PID; set once.
	processInstance = func() string {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
	hostname, _ = os.Hostname()
	// liveJobs counts, by ID, the jobs Run is running in this process.
	// A process is the unit of liveness (a job record names a PID), so
	// this set is process-wide: a job record of this process whose job is
	// not in it belongs to a job that ended without cleaning up (a
	// simulated crash in tests).
	liveJobs = struct {
		sync.Mutex
		n map[string]int
	}{n: map[string]int{}}
)

// jobStarted marks job live in this process until the returned function
// is called.
func jobStarted(job string) (ended func()) {
	liveJobs.Lock()
	liveJobs.n[job]++
	liveJobs.Unlock()
	return func() {
		liveJobs.Lock()
		if liveJobs.n[job]--; liveJobs.n[job] == 0 {
			delete(liveJobs.n, job)
		}
		liveJobs.Unlock()
	}
}

func newJobRecord(job string) jobRecord {
	now := time.Now().UTC()
	return jobRecord{Job: job, Host: hostname, PID: os.Getpid(), Instance: processInstance, Started: now, Heartbeat: now}
}

func (r jobRecord) encode() []byte {
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

// dead reports whether the job of the record has ended.
func (r jobRecord) dead(now time.Time) bool {
	if r.Instance == processInstance {
		liveJobs.Lock()
		defer liveJobs.Unlock()
		return liveJobs.n[r.Job] == 0
	}
	if r.Host == hostname && r.PID > 0 && !processAlive(r.PID) {
		return true
	}
	return now.Sub(r.Heartbeat) > StaleAfter
}

// recordDead decodes a job record and reports whether its job has ended;
// an unreadable record counts as dead (records are written atomically, so
// it was not written by Gale).
func recordDead(b []byte, now time.Time) (string, bool) {
	var r jobRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Job == "" {
		return "", true
	}
	return r.Job, r.dead(now)
}

// Cleanup describes what cleaning an output removed and left.
type Cleanup struct {
	// Removed lists the paths or keys removed: staging areas and parts of
	// dead jobs, objects superseded by the committed output.
	Removed []string
	// Restored names the directory put back in place of a local output
	// whose replacement was interrupted (on filesystems without an atomic
	// exchange).
	Restored string
	// Live lists the jobs found running on the output, whose files were
	// left alone.
	Live []string
}

// CleanOutput removes what dead jobs left at the output rawURL (a local
// path or an object-store URL): staging areas, uncommitted parts, and the
// parts a commit superseded but did not get to delete. It never touches a
// live job's files nor the committed output. gale gc calls it; every job
// does the same for its outputs before it starts.
func CleanOutput(ctx context.Context, open StoreOpener, opts map[string]string, rawURL string) (*Cleanup, error) {
	if p, ok := localPath(rawURL); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return cleanLocal(abs, time.Now())
	}
	out, err := open(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	c, _, err := cleanObjects(ctx, out, time.Now())
	return c, err
}

// spillDirPrefix is shuffle/extsort.SpillDirPrefix: spill directories are
// named gale-extsort-PID-RANDOM.
const spillDirPrefix = "gale-extsort-"

// CleanTemp removes, from the local directory dir (the system's temporary
// directory, or a --spill-dir), what killed Gale processes left there:
// temporary stores (directories gale-... holding a job record whose job is
// dead) and sort spill directories (gale-extsort-PID-... of a process that
// no longer runs on this host). It leaves everything else alone.
func CleanTemp(dir string) (*Cleanup, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &Cleanup{}, nil
		}
		return nil, fmt.Errorf("engine: cleaning %s: %w", dir, err)
	}
	c := &Cleanup{}
	now := time.Now()
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "gale-") {
			continue
		}
		p := filepath.Join(dir, name)
		dead := false
		if rest, ok := strings.CutPrefix(name, spillDirPrefix); ok {
			pidText, _, _ := strings.Cut(rest, "-")
			if pid, err := strconv.Atoi(pidText); err == nil && pid > 0 && pid != os.Getpid() {
				dead = !processAlive(pid)
			}
		} else if b, err := os.ReadFile(filepath.Join(p, jobRecordKey)); err == nil {
			var job string
			if job, dead = recordDead(b, now); !dead {
				c.Live = append(c.Live, job)
			}
		}
		if !dead {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		c.Removed = append(c.Removed, p)
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("engine: cleaning %s: %w", dir, err)
	}
	return c, nil
}

// Local outputs: the staging directory of job J for output dir/base is
// dir/.base.gale-J, its job record dir/.base.gale-J.job, and (where the
// filesystem cannot exchange two directories) the previous output is
// moved aside to dir/.base.gale-J.old during the switch.
func localStagingDir(abs, job string) string {
	return filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".gale-"+job)
}

const (
	localRecordSuffix = ".job"
	localOldSuffix    = ".old"
)

// cleanLocal removes the staging directories of dead jobs for the local
// output abs, and finishes an interrupted two-rename switch.
func cleanLocal(abs string, now time.Time) (*Cleanup, error) {
	c := &Cleanup{}
	prefix := "." + filepath.Base(abs) + ".gale-"
	ents, err := os.ReadDir(filepath.Dir(abs))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, nil
		}
		return nil, fmt.Errorf("engine: cleaning output %s: %w", abs, err)
	}
	jobs := map[string]bool{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" {
			continue
		}
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, localRecordSuffix), localOldSuffix)
		jobs[rest] = true
	}
	ids := make([]string, 0, len(jobs))
	for j := range jobs {
		ids = append(ids, j)
	}
	sort.Strings(ids)
	var errs []error
	for _, job := range ids {
		dir := localStagingDir(abs, job)
		if b, err := os.ReadFile(dir + localRecordSuffix); err == nil {
			if _, dead := recordDead(b, now); !dead {
				c.Live = append(c.Live, job)
				continue
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		old := dir + localOldSuffix
		if _, err := os.Lstat(old); err == nil {
			// The job died between moving the previous output aside and
			// moving its own in: finish the switch if its output is
			// complete, else undo it.
			if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
				from := old
				if _, err := os.Stat(filepath.Join(dir, objstore.SuccessKey)); err == nil {
					from = dir
				}
				if err := os.Rename(from, abs); err != nil {
					errs = append(errs, err)
					continue
				}
				c.Restored = from
			}
		}
		for _, p := range []string{old, dir, dir + localRecordSuffix} {
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
				continue
			}
			c.Removed = append(c.Removed, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("engine: cleaning output %s: %w", abs, err)
	}
	return c, nil
}

// writeFileAtomic writes b to name through a temporary file and a rename.
func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// swapLocal moves the complete staging directory st.dir to the output
// st.local in one step: a rename where there is no output (rename refuses
// a non-empty directory, so a job that created the output meanwhile is
// never mixed with), an exchange with the previous output where there is
// one (which then sits in st.dir until cleanup removes it).
func swapLocal(st *staging, overwrite bool, step func(string) error) error {
	fi, err := os.Lstat(st.local)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.IsDir() && !overwrite {
		if err := step("rename staging directory to output"); err != nil {
			return err
		}
		if err == nil {
			// An empty output directory (os.Rename does not replace
			// directories); removing it fails if a job filled it meanwhile.
			if err := os.Remove(st.local); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return appeared(st.local)
			}
		}
		if err := os.Rename(st.dir, st.local); err != nil {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
				return appeared(st.local)
			}
			return fmt.Errorf("engine: publishing output %s: %w", st.local, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: publishing output %s: %w", st.local, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("engine: output %s is not a directory", st.local)
	}
	if err := step("exchange staging and output directories"); err != nil {
		return err
	}
	err = exchangeDirs(st.dir, st.local)
	if !errors.Is(err, errNoExchange) {
		if err != nil {
			return fmt.Errorf("engine: publishing output %s: %w", st.local, err)
		}
		return nil
	}
	// No atomic exchange here: move the previous output aside, then the
	// new one in. A crash between the two leaves no output at st.local;
	// the next job on it, or gale gc, finishes the switch (cleanLocal).
	old := st.dir + localOldSuffix
	if err := step("move previous output aside"); err != nil {
		return err
	}
	if err := os.Rename(st.local, old); err != nil {
		return fmt.Errorf("engine: moving aside old output %s: %w", st.local, err)
	}
	if err := step("move new output in"); err != nil {
		return err
	}
	if err := os.Rename(st.dir, st.local); err != nil {
		_ = os.Rename(old, st.local) // put the previous output back
		return fmt.Errorf("engine: publishing output %s: %w", st.local, err)
	}
	return os.Rename(old, st.dir) // cleanup removes it with the staging area
}

func appeared(dir string) error {
	return fmt.Errorf("engine: output directory %s appeared while the job ran; "+
		"run again with gale.Overwrite(true) (--overwrite on the gale command line) to replace it", dir)
}

// Object-store outputs.

func stagingPrefix(job string) string { return objstore.TemporaryDir + "/" + job + "/" }

// outputState is what one listing of an object-store output shows.
type outputState struct {
	objs     []objstore.ObjectInfo
	live     map[string]bool // jobs with a live record
	manifest *objstore.Manifest
	marker   bool // _SUCCESS exists
}

// readOutput lists out, then reads the job records of the staging areas
// it holds, then the manifest: in that order, so that a part of a job that
// was live when the listing was taken is either seen live or, once its job
// ended, listed by the manifest read after (jobs remove their record only
// after their switch and cleanup).
func readOutput(ctx context.Context, out objstore.Store, now time.Time) (*outputState, error) {
	objs, err := objstore.ListAll(ctx, out, "")
	if err != nil {
		return nil, fmt.Errorf("engine: listing output %s: %w", out, err)
	}
	s := &outputState{objs: objs, live: map[string]bool{}}
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, objstore.TemporaryDir+"/")
		if !ok {
			continue
		}
		job, name, _ := strings.Cut(rest, "/")
		if name != jobRecordKey {
			continue
		}
		b, err := readAll(ctx, out, o.Key, 0, -1)
		if errors.Is(err, objstore.ErrNotExist) {
			continue // removed since the listing: the job ended
		}
		if err != nil {
			return nil, fmt.Errorf("engine: reading job record %s/%s: %w", out, o.Key, err)
		}
		if _, dead := recordDead(b, now); !dead {
			s.live[job] = true
		}
	}
	b, err := readAll(ctx, out, objstore.SuccessKey, 0, -1)
	switch {
	case errors.Is(err, objstore.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("engine: reading %s/%s: %w", out, objstore.SuccessKey, err)
	default:
		s.marker = true
		if s.manifest, err = objstore.ParseManifest(b); err != nil {
			return nil, fmt.Errorf("engine: %s/%s: %w", out, objstore.SuccessKey, err)
		}
	}
	return s, nil
}

// garbage returns the objects of s that no reader needs and no live job
// owns: staging areas of dead jobs, and parts (Gale's, by name) of dead
// jobs that the manifest does not list. Where a Gale manifest commits the
// output, parts without a job in their name (from Gale before manifests)
// that it does not list are garbage too. keep names a job whose objects
// stay (the caller's own).
func (s *outputState) garbage(keep string) []string {
	listed := map[string]bool{}
	if s.manifest != nil {
		for _, p := range s.manifest.Parts {
			listed[p.Key] = true
		}
	}
	var keys []string
	for _, o := range s.objs {
		if rest, ok := strings.CutPrefix(o.Key, objstore.TemporaryDir+"/"); ok {
			job, _, _ := strings.Cut(rest, "/")
			if !s.live[job] && job != keep {
				keys = append(keys, o.Key)
			}
			continue
		}
		if strings.Contains(o.Key, "/") {
			continue
		}
		job, ok := objstore.ParsePartName(o.Key)
		if !ok || listed[o.Key] || s.live[job] || job == keep && job != "" {
			continue
		}
		if job == "" && s.manifest == nil {
			continue // an older output's part, or not Gale's
		}
		keys = append(keys, o.Key)
	}
	// Records last: a staging area stays recognizably dead until the
	// rest of it is gone.
	sort.SliceStable(keys, func(i, j int) bool {
		return path.Base(keys[i]) != jobRecordKey && path.Base(keys[j]) == jobRecordKey
	})
	return keys
}

// cleanObjects removes the garbage of the object-store output out.
func cleanObjects(ctx context.Context, out objstore.Store, now time.Time) (*Cleanup, *outputState, error) {
	s, err := readOutput(ctx, out, now)
	if err != nil {
		return nil, nil, err
	}
	c := &Cleanup{}
	for job := range s.live {
		c.Live = append(c.Live, job)
	}
	sort.Strings(c.Live)
	var errs []error
	for _, k := range s.garbage("") {
		if err := out.Delete(ctx, k); err != nil {
			errs = append(errs, err)
			continue
		}
		c.Removed = append(c.Removed, k)
	}
	removed := map[string]bool{}
	for _, k := range c.Removed {
		removed[k] = true
	}
	s.objs = slices.DeleteFunc(s.objs, func(o objstore.ObjectInfo) bool { return removed[o.Key] })
	if err := errors.Join(errs...); err != nil {
		return c, s, fmt.Errorf("engine: cleaning output %s: %w", out, err)
	}
	return c, s, nil
}

// dataKeys returns the keys of s outside staging areas.
func (s *outputState) dataKeys() []string {
	var keys []string
	for _, o := range s.objs {
		if !strings.HasPrefix(o.Key, objstore.TemporaryDir+"/") {
			keys = append(keys, o.Key)
		}
	}
	return keys
}
