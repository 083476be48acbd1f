package azure

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// HostJSON is the part of a Function App's host.json a custom-handler app
// uses.
type HostJSON struct {
	Version         string             `json:"version"`
	CustomHandler   *CustomHandlerJSON `json:"customHandler,omitempty"`
	FunctionTimeout string             `json:"functionTimeout,omitempty"`
	Extensions      *ExtensionsJSON    `json:"extensions,omitempty"`
}

// CustomHandlerJSON is host.json's customHandler section.
type CustomHandlerJSON struct {
	Description DescriptionJSON `json:"description"`
	// EnableForwardingHTTPRequest makes the host forward the caller's
	// request to the handler as is, for functions with only an HTTP
	// trigger and an http output.
	EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest,omitempty"`
	// EnableProxyingHTTPRequest is the newer name of a streaming form of
	// the same forwarding; Gale's host treats it like the former.
	EnableProxyingHTTPRequest bool `json:"enableProxyingHttpRequest,omitempty"`
}

// DescriptionJSON says how the host starts the custom handler.
type DescriptionJSON struct {
	DefaultExecutablePath string   `json:"defaultExecutablePath"`
	Arguments             []string `json:"arguments,omitempty"`
	WorkingDirectory      string   `json:"workingDirectory,omitempty"`
}

// ExtensionsJSON is host.json's extensions section; only http is used.
type ExtensionsJSON struct {
	HTTP *HTTPExtensionJSON `json:"http,omitempty"`
}

// HTTPExtensionJSON is host.json's extensions.http section. RoutePrefix
// is a pointer because an explicit "" (no prefix) differs from the
// default "api".
type HTTPExtensionJSON struct {
	RoutePrefix *string `json:"routePrefix,omitempty"`
	// MaxConcurrentRequests bounds the HTTP invocations an instance runs
	// at once; MaxOutstandingRequests those running or queued, beyond
	// which the host answers 429. -1 or 0: unbounded.
	MaxConcurrentRequests  int `json:"maxConcurrentRequests,omitempty"`
	MaxOutstandingRequests int `json:"maxOutstandingRequests,omitempty"`
}

// FunctionJSON is a function's function.json.
type FunctionJSON struct {
	Bindings []BindingJSON `json:"bindings"`
}

// BindingJSON is one binding of a function.json.
type BindingJSON struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Name      string   `json:"name"`
	AuthLevel string   `json:"authLevel,omitempty"`
	Methods   []string `json:"methods,omitempty"`
	Route     string   `json:"route,omitempty"`
}

// AppConfig describes the custom-handler app Gale deploys.
type AppConfig struct {
	// Executable is the worker binary's name in the package. Default
	// "handler" (a linux/amd64 build of the program).
	Executable string
	// Arguments are the worker's arguments; the gale CLI passes
	// ["worker"]. A user's program needs none: it serves where it would
	// call gale.Run.
	Arguments []string
	// Functions are the HTTP-triggered functions to define, each with
	// authLevel "function" (a key is required). Default ["gale"].
	Functions []string
	// Forwarding sets enableForwardingHttpRequest, so the host forwards
	// the HTTP request itself instead of the Data/Metadata payload. The
	// worker serves both; the payload mode is the default because it
	// works for every trigger.
	Forwarding bool
	// MaxConcurrentRequests is host.json's extensions.http.
	// maxConcurrentRequests: the invocations one instance runs at once
	// (the thesis measured Azure with the default, 100, and with 1).
	// 0 keeps the platform's default.
	MaxConcurrentRequests int
	// FunctionTimeout is host.json's functionTimeout, e.g. "00:10:00"
	// (the Consumption plan's maximum). Default: the plan's own.
	FunctionTimeout string
}

// Files returns the app's configuration files by path in the package:
// host.json and FUNCTION/function.json for each function, as indented
// JSON with a final newline.
func (c AppConfig) Files() (map[string][]byte, error) {
	if c.Executable == "" {
		c.Executable = "handler"
	}
	if len(c.Functions) == 0 {
		c.Functions = []string{"gale"}
	}
	var errs []error
	if strings.ContainsAny(c.Executable, `/\`) || c.Executable == "host.json" {
		errs = append(errs, fmt.Errorf("azure: executable %q must be a plain file name", c.Executable))
	}
	for _, f := range c.Functions {
		if strings.EqualFold(f, c.Executable) {
			errs = append(errs, fmt.Errorf("azure: function %q has the executable's name; a function is a folder of the package", f))
		}
		if !functionName.MatchString(f) {
			errs = append(errs, fmt.Errorf("azure: function %q is not a function name (a letter, then letters, digits, '_' or '-')", f))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	host := HostJSON{
		Version:         "2.0",
		FunctionTimeout: c.FunctionTimeout,
		CustomHandler: &CustomHandlerJSON{
			Description:                 DescriptionJSON{DefaultExecutablePath: c.Executable, Arguments: c.Arguments},
			EnableForwardingHTTPRequest: c.Forwarding,
		},
	}
	if c.MaxConcurrentRequests < 0 {
		return nil, fmt.Errorf("azure: maxConcurrentRequests %d is negative", c.MaxConcurrentRequests)
	}
	if c.MaxConcurrentRequests > 0 {
		host.Extensions = &ExtensionsJSON{HTTP: &HTTPExtensionJSON{MaxConcurrentRequests: c.MaxConcurrentRequests}}
	}
	files := map[string][]byte{"host.json": indentJSON(host)}
	for _, f := range c.Functions {
		files[f+"/function.json"] = indentJSON(FunctionJSON{Bindings: []BindingJSON{
			{Type: "httpTrigger", Direction: "in", Name: "req", AuthLevel: "function", Methods: []string{"post"}},
			{Type: "http", Direction: "out", Name: "res"},
		}})
	}
	return files, nil
}

// WriteApp lays out the app c in dir as a Functions host reads it: the
// configuration files of Files, and c.Executable (default "handler") as a
// symbolic link to the worker binary exe, so the host on this machine
// starts exe itself.
func WriteApp(dir string, c AppConfig, exe string) error {
	if c.Executable == "" {
		c.Executable = "handler"
	}
	files, err := c.Files()
	if err != nil {
		return err
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("azure: writing the app: %w", err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("azure: writing the app: %w", err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, c.Executable)); err != nil {
		return fmt.Errorf("azure: writing the app: %w", err)
	}
	return nil
}

func indentJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return append(b, '\n')
}

// packageTime is every entry's modification time in a package, so the same
// inputs give the same bytes.
var packageTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Package writes the app package, a zip holding host.json, a folder with a
// function.json per function and the worker binary read from binary (mode
// 0755), to w. The zip is deterministic: entries in path order, fixed
// times and modes, so the same binary and configuration give the same
// bytes.
func Package(w io.Writer, c AppConfig, binary io.Reader) error {
	files, err := c.Files()
	if err != nil {
		return err
	}
	exe := c.Executable
	if exe == "" {
		exe = "handler"
	}
	names := make([]string, 0, len(files)+1)
	for n := range files {
		names = append(names, n)
	}
	names = append(names, exe)
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, n := range names {
		hdr := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: packageTime}
		if n == exe {
			hdr.SetMode(0o755)
		} else {
			hdr.SetMode(0o644)
		}
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if n == exe {
			if _, err := io.Copy(fw, binary); err != nil {
				return fmt.Errorf("azure: packaging the worker binary: %w", err)
			}
			continue
		}
		if _, err := fw.Write(files[n]); err != nil {
			return err
		}
	}
	return zw.Close()
}

// PackageFile is Package reading the binary from a file.
func PackageFile(w io.Writer, c AppConfig, binaryPath string) error {
	f, err := os.Open(binaryPath)
	if err != nil {
		return fmt.Errorf("azure: worker binary: %w", err)
	}
	defer f.Close()
	return Package(w, c, f)
}

// Unpack extracts a package zip into dir (for a local host), refusing
// entries that would land outside dir.
func Unpack(pkg []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return fmt.Errorf("azure: app package: %w", err)
	}
	for _, f := range zr.File {
		clean := path.Clean(f.Name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("azure: app package entry %q leaves the app directory", f.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(clean))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
		if err == nil {
			_, err = io.Copy(out, rc)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("azure: unpacking %s: %w", f.Name, err)
		}
	}
	return nil
}
