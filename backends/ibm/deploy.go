package ibm

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultKind is the runtime of a deployed action: OpenWhisk's Go runtime,
// whose ActionLoop proxy runs a precompiled `exec` from the action's zip.
const DefaultKind = "go:1.22"

// zipTime is the modification time stored in action zips, fixed so that
// the same binary always packages to the same bytes.
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// PackageAction returns the zip OpenWhisk takes for a native action: one
// executable file named `exec` (mode 0755) holding binary, a Linux build
// of the program. The bytes depend only on binary.
func PackageAction(binary []byte) ([]byte, error) {
	if len(binary) == 0 {
		return nil, errors.New("ibm: package action: the binary is empty")
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "exec", Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(binary); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DeployConfig says how to create the action.
type DeployConfig struct {
	// Kind is the runtime kind. Default DefaultKind. With Image set it is
	// "blackbox".
	Kind string
	// Image, if set, runs the action on that Docker image (a blackbox
	// action), e.g. "openwhisk/action-golang-v1.22", whose proxy runs
	// `exec` from the zip the same way.
	Image string
}

// ActionDocument returns the body of the PUT that creates or updates the
// action: the zip as base64 code, the kind (or blackbox image), and the
// memory and time limits of the backend's Config.
func (b *Backend) ActionDocument(zipped []byte, dc DeployConfig) ([]byte, error) {
	exec := map[string]any{"kind": dc.Kind, "code": base64.StdEncoding.EncodeToString(zipped), "binary": true}
	if dc.Kind == "" {
		exec["kind"] = DefaultKind
	}
	if dc.Image != "" {
		exec["kind"], exec["image"] = "blackbox", dc.Image
	}
	name := b.cfg.Action
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return json.Marshal(map[string]any{
		"namespace": b.cfg.Namespace,
		"name":      name,
		"exec":      exec,
		"limits": map[string]any{
			"timeout": b.cfg.Timeout.Milliseconds(),
			"memory":  b.cfg.MemoryMiB,
			"logs":    10,
		},
		"annotations": []map[string]any{{"key": "description", "value": "Gale worker"}},
	})
}

// Deploy creates or updates the backend's action from zipped (see
// PackageAction) with PUT /api/v1/namespaces/{ns}/actions/{action}
// ?overwrite=true.
func (b *Backend) Deploy(ctx context.Context, zipped []byte, dc DeployConfig) error {
	doc, err := b.ActionDocument(zipped, dc)
	if err != nil {
		return err
	}
	if len(doc) > 48<<20 {
		return fmt.Errorf("ibm: deploy %s: the action is %d MiB, over OpenWhisk's 48 MiB code limit (build with -ldflags=\"-s -w\", or use a blackbox image)", b.actName, len(doc)>>20)
	}
	status, _, body, err := b.do(ctx, http.MethodPut, b.invoke+"?overwrite=true", doc)
	if err != nil {
		return fmt.Errorf("ibm: deploy %s: %w", b.actName, b.netError(ctx, "deploy", err))
	}
	if status != http.StatusOK {
		msg := apiError(body)
		switch status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: deploy %s: %s (check ibm.auth and ibm.namespace)", ErrCredentials, b.actName, msg)
		case http.StatusNotFound:
			return fmt.Errorf("ibm: deploy %s: %s (create the package first, or deploy outside a package)", b.actName, msg)
		}
		return fmt.Errorf("ibm: deploy %s: OpenWhisk answered %d: %s", b.actName, status, msg)
	}
	return nil
}
