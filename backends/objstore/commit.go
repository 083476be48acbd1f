package objstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Names of Gale's commit protocol (docs/engine.md, "Committing output").
// An output is a folder (a directory, or a key prefix ending in "/") whose
// SuccessKey object commits it: it holds a Manifest listing the part
// objects that make up the output. Jobs stage under TemporaryDir inside an
// object-store output.
const (
	// SuccessKey names the marker object of a committed output.
	SuccessKey = "_SUCCESS"
	// TemporaryDir is the folder inside an object-store output where jobs
	// stage their attempts (TemporaryDir/JOB/...).
	TemporaryDir = "_temporary"
	// ManifestFormat identifies Gale's manifest in a SuccessKey object.
	ManifestFormat = "gale-commit/1"
)

// ErrUncommitted is returned (wrapped, naming the folder) when a reader of
// committed outputs meets a folder that looks like an output being written,
// or one whose writer died: part files or a TemporaryDir, and no
// SuccessKey.
var ErrUncommitted = errors.New("objstore: uncommitted output")

// Manifest is the content of a SuccessKey object written by Gale: the job
// that committed the output and the part objects it consists of. Readers
// read exactly these parts; any other object in the folder is a leftover
// (of an earlier output, or of a job that died) that readers ignore and
// the next commit or gale gc removes.
type Manifest struct {
	Format string         `json:"format"`
	Job    string         `json:"job"`
	Parts  []ManifestPart `json:"parts"`
}

// ManifestPart is one committed part: its key relative to the output
// folder and its size in bytes.
type ManifestPart struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// Encode returns m as the bytes of a SuccessKey object.
func (m *Manifest) Encode() []byte {
	m.Format = ManifestFormat
	b, _ := json.MarshalIndent(m, "", " ") // plain strings and numbers: cannot fail
	return append(b, '\n')
}

// ParseManifest decodes the content of a SuccessKey object. An empty one,
// as Hadoop, Spark and Gale before manifests write, returns nil and no
// error: the folder is committed, but lists no parts.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Format != ManifestFormat {
		return nil, fmt.Errorf("not a Gale manifest (%s) nor an empty marker", ManifestFormat)
	}
	for _, p := range m.Parts {
		if err := ValidateKey(p.Key); err != nil || strings.Contains(p.Key, "/") {
			return nil, fmt.Errorf("manifest part %q is not a name in the output folder", p.Key)
		}
	}
	return &m, nil
}

// PartName returns the name of part i of an output: part-00000 for a
// filesystem output (the whole directory is swapped in at once), and
// part-00000-JOB on object stores, where the parts of successive commits
// live side by side until the manifest switches from one set to the other.
func PartName(i int, job string) string {
	if job == "" {
		return fmt.Sprintf("part-%05d", i)
	}
	return fmt.Sprintf("part-%05d-%s", i, job)
}

// ParsePartName reports whether name (a base name) is a part written by
// Gale, part-NNNNN or part-NNNNN-JOB, and returns JOB ("" for the first).
// Names with an extension (part-00000.csv) are not Gale's.
func ParsePartName(name string) (job string, ok bool) {
	rest, found := strings.CutPrefix(name, "part-")
	if !found {
		return "", false
	}
	digits := 0 // %05d: five digits, more past part-99999
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits < 5 {
		return "", false
	}
	rest = rest[digits:]
	if rest == "" {
		return "", true
	}
	if rest[0] != '-' || len(rest) == 1 || strings.ContainsAny(rest, "/.") {
		return "", false
	}
	return rest[1:], true
}

// Marker returns the content of the SuccessKey object of folder (a key
// prefix ending in "/", or "" for the root), and whether it exists.
type Marker func(ctx context.Context, folder string) ([]byte, bool, error)

// SelectCommitted keeps, of objs (keys in any order, relative to one
// root), those a reader of committed outputs reads, in key order. Keys are
// taken folder by folder (the folder of a/b/c is a/b/):
//
//   - a folder with a SuccessKey holding a Manifest yields exactly the parts
//     it lists, each of which must be in objs with the listed size (else an
//     error names it);
//   - a folder with an empty SuccessKey (Hadoop, older Gale) yields its
//     objects but the marker;
//   - a folder without SuccessKey that holds Gale part files, or whose keys
//     include a TemporaryDir folder, is refused with an error wrapping
//     ErrUncommitted: a job is writing it, or died writing it;
//   - other folders yield all their objects.
//
// Keys inside a TemporaryDir folder are never yielded. marker reads a
// folder's SuccessKey. complete says that objs holds every object of its
// folders (a prefix listing), so a listed part missing from it means the
// output was damaged; a glob's matches need not include every part.
func SelectCommitted(ctx context.Context, objs []ObjectInfo, complete bool, marker Marker) ([]ObjectInfo, error) {
	byFolder := map[string][]ObjectInfo{}
	temporary := map[string]bool{}
	for _, o := range objs {
		if i := strings.Index("/"+o.Key, "/"+TemporaryDir+"/"); i >= 0 {
			temporary[o.Key[:i]] = true
			continue
		}
		dir := folderOf(o.Key)
		byFolder[dir] = append(byFolder[dir], o)
	}
	for dir := range temporary {
		if _, ok := byFolder[dir]; !ok {
			byFolder[dir] = nil
		}
	}
	folders := make([]string, 0, len(byFolder))
	for dir := range byFolder {
		folders = append(folders, dir)
	}
	sort.Strings(folders)
	var out []ObjectInfo
	var errs []error
	for _, dir := range folders {
		sel, err := selectFolder(ctx, dir, byFolder[dir], temporary[dir], complete, marker)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sel...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func folderOf(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return ""
}

func selectFolder(ctx context.Context, dir string, objs []ObjectInfo, temporary, complete bool, marker Marker) ([]ObjectInfo, error) {
	hasParts := false
	for _, o := range objs {
		if _, ok := ParsePartName(path.Base(o.Key)); ok {
			hasParts = true
		}
	}
	b, ok, err := marker(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("reading the commit marker %s%s: %w", dir, SuccessKey, err)
	}
	if !ok {
		if hasParts || temporary {
			return nil, fmt.Errorf("%w: %s holds part files or %s/ but no %s: a job is writing it or died before committing it",
				ErrUncommitted, folderName(dir), TemporaryDir, SuccessKey)
		}
		return objs, nil
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", dir, SuccessKey, err)
	}
	var out []ObjectInfo
	if m == nil { // an empty marker: everything but the marker
		for _, o := range objs {
			if path.Base(o.Key) != SuccessKey {
				out = append(out, o)
			}
		}
		return out, nil
	}
	have := map[string]ObjectInfo{}
	for _, o := range objs {
		have[path.Base(o.Key)] = o
	}
	for _, p := range m.Parts {
		o, ok := have[p.Key]
		if !ok && !complete {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("%s%s of job %s lists %s, which is missing: the output was changed after it was committed",
				dir, SuccessKey, m.Job, dir+p.Key)
		}
		if o.Size != p.Size {
			return nil, fmt.Errorf("%s%s of job %s lists %s with %d bytes, but it has %d: the output was changed after it was committed",
				dir, SuccessKey, m.Job, dir+p.Key, p.Size, o.Size)
		}
		out = append(out, o)
	}
	return out, nil
}

func folderName(dir string) string {
	if dir == "" {
		return "the input's root folder"
	}
	return dir
}

// ReadManifest reads the manifest of the output folder (a key prefix
// ending in "/", or "" for st's root) of st. It returns an error wrapping
// ErrNotExist if the folder has no SuccessKey, and a nil Manifest for an
// empty marker.
func ReadManifest(ctx context.Context, st Store, folder string) (*Manifest, error) {
	rc, err := st.Get(ctx, folder+SuccessKey, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s/%s%s: %w", st, folder, SuccessKey, err)
	}
	return m, nil
}
