package gale

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// readInputs is one read transform's inputs as prepare resolved them: the
// patterns the program gave and the files they name.
type readInputs struct {
	n        *node
	patterns []string
	files    []inputFile
}

// checkOutputsApart refuses every output that is one of the job's inputs,
// holds one (replacing the output would delete it), or lies inside one
// (every later run would read the output back as input). Local paths are
// compared once made absolute, cleaned and with symbolic links resolved;
// object-store URLs by scheme, bucket and key prefix.
func checkOutputsApart(reads []readInputs, sinks []*node) error {
	var errs []error
	dirs := map[string]string{} // input directories, resolved
	for _, s := range sinks {
		out := refOf(s.sink.path)
		for _, r := range reads {
			var err error
			for _, pat := range r.patterns {
				if err = patternApart(s.sink.path, out, pat); err != nil {
					break
				}
			}
			if err == nil {
				err = filesApart(s.sink.path, out, r.files, dirs)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("gale: %s (%s) and %s (%s): %w", s.Label, s.Loc, r.n.Label, r.n.Loc, err))
			}
		}
	}
	return errors.Join(errs...)
}

// storeRef is an object-store URL split for comparison: scheme and bucket,
// and the key prefix without leading or trailing slashes. A local path has
// the scheme "file" and its resolved path as key.
type storeRef struct {
	scheme, bucket, key string
}

func refOf(raw string) storeRef {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1 {
		return storeRef{scheme: u.Scheme, bucket: u.Host, key: strings.TrimPrefix(u.Path, "/")}
	}
	return storeRef{scheme: "file", key: realPath(localPathOf(raw))}
}

// localPathOf returns the path of a bare path or file:// URL.
func localPathOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme == "file" {
		return u.Path
	}
	return raw
}

// realPath returns p absolute and cleaned, with the symbolic links of its
// longest existing ancestor resolved (the rest does not exist yet).
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for dir := abs; ; {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return abs
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
		dir = parent
	}
}

// within reports whether the cleaned path p is dir or lies under it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// filesApart refuses an output that is, or holds, one of the input files.
// dirs caches the resolved input directories.
func filesApart(output string, out storeRef, files []inputFile, dirs map[string]string) error {
	for _, f := range files {
		if out.scheme == "file" {
			if refOf(f.url).scheme != "file" {
				continue
			}
			dir, ok := dirs[f.url]
			if !ok {
				dir = realPath(localPathOf(f.url))
				dirs[f.url] = dir
			}
			fp := filepath.Join(dir, filepath.FromSlash(f.key))
			if fi, err := os.Lstat(fp); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				fp = realPath(fp)
			}
			if fp == out.key {
				return fmt.Errorf("the output %s is the input file %s itself; write the output elsewhere", out.key, f.name)
			}
			if within(fp, out.key) {
				return fmt.Errorf("the output %s holds the input file %s, which replacing the output would delete; "+
					"write the output elsewhere", out.key, fp)
			}
			continue
		}
		if in := refOf(f.url); in.scheme != out.scheme || in.bucket != out.bucket {
			continue
		}
		if okey := strings.Trim(out.key, "/"); okey == "" || f.key == okey || strings.HasPrefix(f.key, okey+"/") {
			return fmt.Errorf("the output %s holds the input object %s, which replacing the output would delete; "+
				"write the output elsewhere", output, f.name)
		}
	}
	return nil
}

// patternApart refuses an output that an input pattern names, or that lies
// inside what it names, even where the output does not exist yet.
func patternApart(output string, out storeRef, pattern string) error {
	in := refOf(pattern)
	if out.scheme != in.scheme || out.bucket != in.bucket {
		return nil
	}
	if out.scheme == "file" {
		return localPatternApart(out.key, in.key)
	}
	return objectPatternApart(output, out, pattern, in)
}

func localPatternApart(out, pattern string) error {
	if !strings.ContainsAny(pattern, "*?[") {
		if out == pattern {
			return fmt.Errorf("the output %s is the input itself; write the output elsewhere", out)
		}
		if fi, err := os.Stat(pattern); err == nil && fi.IsDir() && within(out, pattern) {
			return fmt.Errorf("the output %s is inside the input directory %s, so every later run would read "+
				"this output back as input; write the output outside %s", out, pattern, pattern)
		}
		return nil
	}
	// A glob names the directories it matches as inputs (read whole): the
	// output must not be one of them or inside one, now or once it exists.
	for a := out; ; {
		if ok, _ := filepath.Match(pattern, a); ok {
			return fmt.Errorf("the input pattern %s matches %s, which is or holds the output %s, so every later run "+
				"would read this output back as input; write the output elsewhere or narrow the pattern", pattern, a, out)
		}
		parent := filepath.Dir(a)
		if parent == a {
			return nil
		}
		a = parent
	}
}

func objectPatternApart(output string, out storeRef, pattern string, in storeRef) error {
	if strings.Trim(out.key, "/") == strings.Trim(in.key, "/") {
		return fmt.Errorf("the output %s is the input itself; write the output elsewhere", output)
	}
	// What the output will hold: KEY/part-00000, ...
	part := "part-00000"
	if okey := strings.Trim(out.key, "/"); okey != "" {
		part = okey + "/" + part
	}
	if strings.ContainsAny(in.key, "*?[") {
		if ok, _ := path.Match(in.key, part); ok {
			return fmt.Errorf("the input pattern %s matches the output's part files (%s), so every later run would "+
				"read this output back as input; write the output elsewhere or narrow the pattern", pattern, part)
		}
		return nil
	}
	if underPrefix(part, in.key) {
		return fmt.Errorf("the output %s is inside the input prefix %s, so every later run would read this output "+
			"back as input; write the output outside it", output, pattern)
	}
	return nil
}
