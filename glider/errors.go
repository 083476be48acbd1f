package glider

import (
	"errors"
	"fmt"
	"strings"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Errors. Errors returned by the client and the servers wrap one of these
// (match them with errors.Is); the message names the path or server and,
// where there is one, the fix.
var (
	// ErrNotFound means no node exists at the path.
	ErrNotFound = errors.New("glider: not found")
	// ErrExists means a node already exists at the path.
	ErrExists = errors.New("glider: already exists")
	// ErrNotEmpty means a directory to delete has children and the delete
	// was not recursive.
	ErrNotEmpty = errors.New("glider: directory not empty")
	// ErrNotDir means a path component is not a directory.
	ErrNotDir = errors.New("glider: not a directory")
	// ErrWrongKind means the node exists but is not of the kind the
	// operation needs (reading a directory, writing a file as an action).
	ErrWrongKind = errors.New("glider: wrong node kind")
	// ErrBadRequest means the request itself is invalid (a malformed path,
	// an unknown storage class, a protocol violation).
	ErrBadRequest = errors.New("glider: bad request")
	// ErrUnknownType means no action type (or combiner, or predicate) of
	// that name is registered in the active server's binary.
	ErrUnknownType = errors.New("glider: unknown action type")
	// ErrNoSpace means no server of the storage class has room left (no
	// free block or action slot).
	ErrNoSpace = errors.New("glider: no space left")
	// ErrServerGone means the server holding the node left the cluster or
	// the connection to it broke; the operation may be retried once the
	// node is recreated.
	ErrServerGone = errors.New("glider: server gone")
	// ErrActionFailed means an action's method returned an error or
	// panicked.
	ErrActionFailed = errors.New("glider: action failed")
	// ErrStreamBroken means a stream was cut before its end (the writer
	// went away or aborted); an action reading it sees this error.
	ErrStreamBroken = errors.New("glider: stream broken")
	// ErrDenied means the token does not open the namespace.
	ErrDenied = errors.New("glider: access denied")
	// ErrShutdown means the server is shutting down.
	ErrShutdown = errors.New("glider: server shutting down")
	// ErrInternal is a server-side invariant failure.
	ErrInternal = errors.New("glider: internal error")
	// ErrDataLost means a file's block was on a storage server that left.
	ErrDataLost = errors.New("glider: data lost")
	// ErrClosed means the client or stream was already closed.
	ErrClosed = errors.New("glider: closed")
)

var codeErrs = map[wire.Code]error{
	wire.CodeNotFound:     ErrNotFound,
	wire.CodeExists:       ErrExists,
	wire.CodeNotEmpty:     ErrNotEmpty,
	wire.CodeNotDir:       ErrNotDir,
	wire.CodeWrongKind:    ErrWrongKind,
	wire.CodeBadRequest:   ErrBadRequest,
	wire.CodeUnknownType:  ErrUnknownType,
	wire.CodeNoSpace:      ErrNoSpace,
	wire.CodeServerGone:   ErrServerGone,
	wire.CodeActionFailed: ErrActionFailed,
	wire.CodeStreamBroken: ErrStreamBroken,
	wire.CodeDenied:       ErrDenied,
	wire.CodeShutdown:     ErrShutdown,
	wire.CodeInternal:     ErrInternal,
	wire.CodeDataLost:     ErrDataLost,
}

// lineErrors is errors.Join on one line: a Validate reports every problem
// at once, and a command prints its error as one line.
type lineErrors []error

func (e lineErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e lineErrors) Unwrap() []error { return e }

// joinLine returns nil, the one error, or all of errs on one line.
func joinLine(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return lineErrors(errs)
}

// codedError is an error with its protocol code; it unwraps to the
// sentinel of that code.
type codedError struct {
	code wire.Code
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return codeErrs[e.code] }

// errf builds an error of the given code. The message should start with
// "glider: " and name the object.
func errf(code wire.Code, format string, args ...any) error {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

// codeOf returns the protocol code of err.
func codeOf(err error) wire.Code {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	for c, s := range codeErrs {
		if errors.Is(err, s) {
			return c
		}
	}
	return wire.CodeInternal
}

// errResponse turns err into a response.
func errResponse(err error) *wire.Response {
	return &wire.Response{Code: codeOf(err), Msg: err.Error()}
}

// respError returns the error a response carries, or nil.
func respError(r *wire.Response) error {
	if r.Code == wire.CodeOK {
		return nil
	}
	return &codedError{code: r.Code, msg: r.Msg}
}
