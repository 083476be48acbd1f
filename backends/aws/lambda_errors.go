package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/galeproject/gale/backends"
)

// rawResponse holds the status and body of an error response, which the
// SDK's deserializer would otherwise consume: the Runtime Interface
// Emulator answers a crashed runtime with 502 and an errorMessage/errorType
// body that no SDK error type carries.
type rawResponse struct {
	status int
	body   []byte
}

type rawKey struct{}

// maxRawBody bounds how much of an error response is kept.
const maxRawBody = 64 << 10

// addCaptureRaw adds, innermost in the deserialize step (so it sees the
// transport's response before the operation's deserializer), a middleware
// that copies the status and body of non-2xx responses into the
// *rawResponse found in the context.
func addCaptureRaw(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("GaleCaptureRawResponse",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			dst, _ := ctx.Value(rawKey{}).(*rawResponse)
			resp, ok := out.RawResponse.(*smithyhttp.Response)
			if dst == nil || !ok || resp.StatusCode < 300 {
				return out, md, err
			}
			dst.status = resp.StatusCode
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxRawBody))
			resp.Body.Close()
			if rerr == nil {
				dst.body = b
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return out, md, err
		}), middleware.After)
}

// isThrottle reports a 429 TooManyRequestsException.
func isThrottle(err error, raw *rawResponse) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "TooManyRequestsException" {
		return true
	}
	return raw.status == 429 || httpStatus(err) == 429
}

// lambdaErrorBody is how Lambda (and the emulator) report a function
// error in the response body.
type lambdaErrorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// functionErrorFromBody returns the function error an errorMessage /
// errorType body reports, or, for the emulator's plain-text "Task timed
// out after N seconds", a timeout; nil for any other body.
func functionErrorFromBody(body []byte) *backends.FunctionError {
	var b lambdaErrorBody
	if err := json.Unmarshal(body, &b); err == nil && (b.ErrorMessage != "" || b.ErrorType != "") {
		return &backends.FunctionError{Backend: "aws", Type: classify(b.ErrorType, b.ErrorMessage), Message: describe(b)}
	}
	if s := strings.TrimSpace(string(body)); strings.HasPrefix(s, "Task timed out") {
		return &backends.FunctionError{Backend: "aws", Type: "timeout", Message: s + " (raise the function's timeout: timeout in the backends.aws section, then gale deploy --backend aws)"}
	}
	return nil
}

func describe(b lambdaErrorBody) string {
	msg := b.ErrorMessage
	if b.ErrorType != "" {
		msg = b.ErrorType + ": " + msg
	}
	switch classify(b.ErrorType, b.ErrorMessage) {
	case "timeout":
		msg += " (raise the function's timeout: timeout in the backends.aws section, then gale deploy --backend aws)"
	case "oom":
		msg += " (the function ran out of memory: raise memory_mib in the backends.aws section, then gale deploy --backend aws)"
	}
	return msg
}

// classify maps Lambda's error type and message to a FunctionError type:
// "timeout" (Task timed out, Sandbox.Timedout), "oom" (Runtime.OutOfMemory,
// or a runtime killed by a signal: Lambda's out-of-memory kill), "crash"
// (any other Runtime exited: the process ended mid-invocation), "panic"
// (a Go panic aws-lambda-go caught), else "error".
func classify(errType, msg string) string {
	switch {
	case strings.Contains(msg, "Task timed out") || errType == "Sandbox.Timedout":
		return "timeout"
	case errType == "Runtime.OutOfMemory" || strings.Contains(msg, "signal: killed") ||
		(strings.Contains(msg, "Runtime exited") && strings.Contains(msg, "out of memory")):
		return "oom"
	case strings.Contains(msg, "Runtime exited") || errType == "Runtime.ExitError":
		return "crash"
	case errType == "Runtime.Unknown" || strings.HasPrefix(errType, "Runtime."):
		return "runtime"
	}
	return "error"
}

// invokeError turns an SDK error from Invoke (other than throttling and
// function errors) into a Gale error: did-not-run cases wrap
// backends.ErrNotStarted, and configuration problems name their fix.
func (l *Lambda) invokeError(ctx context.Context, t backends.Task, err error) error {
	prefix := fmt.Sprintf("aws: %s: task %s", l.where, t.ID)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var signErr *v4.SigningError
	noCreds := errors.As(err, &signErr) || strings.Contains(err.Error(), "get identity: ") ||
		strings.Contains(err.Error(), "failed to retrieve credentials") ||
		strings.Contains(err.Error(), "failed to refresh cached credentials")
	switch {
	case isCode(err, "ResourceNotFoundException") || (httpStatus(err) == 404 && !isCode(err, "ResourceNotReadyException")):
		return fmt.Errorf("%s: %w (deploy it with: gale deploy --backend aws; or fix function, qualifier and region in the backends.aws section): %w: %w",
			prefix, ErrNotDeployed, backends.ErrNotStarted, err)
	case isCode(err, "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
		"IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId"):
		return fmt.Errorf("%s: %w: Lambda rejected them (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the profile, and that the region is right): %w: %w",
			prefix, ErrCredentials, backends.ErrNotStarted, err)
	case isCode(err, "AccessDeniedException", "AccessDenied") || httpStatus(err) == 403:
		return fmt.Errorf("%s: access denied (grant these credentials lambda:InvokeFunction on the function): %w: %w", prefix, backends.ErrNotStarted, err)
	case noCreds:
		return fmt.Errorf("%s: %w (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role): %w: %w",
			prefix, ErrCredentials, backends.ErrNotStarted, err)
	case isCode(err, "ResourceConflictException", "ResourceNotReadyException"):
		return fmt.Errorf("%s: the function is not ready (being created or updated; wait for gale deploy to finish): %w: %w", prefix, backends.ErrNotStarted, err)
	case isCode(err, "RequestTooLargeException") || httpStatus(err) == 413:
		return fmt.Errorf("%s: %w (configure a staging store: staging in the backends.aws section): %w: %w", prefix, ErrPayloadTooLarge, backends.ErrNotStarted, err)
	case isCode(err, "InvalidRequestContentException", "InvalidParameterValueException"):
		return fmt.Errorf("%s: Lambda refused the request: %w: %w", prefix, backends.ErrNotStarted, err)
	case isDialErr(err):
		hint := "check the region (region in the backends.aws section, or AWS_REGION) and the network"
		if l.cfg.Endpoint != "" {
			hint = fmt.Sprintf("check that the endpoint %s is up (endpoint in the backends.aws section)", l.cfg.Endpoint)
		}
		return fmt.Errorf("%s: cannot reach Lambda (%s): %w: %w", prefix, hint, backends.ErrNotStarted, err)
	}
	// Anything else (a reset connection, a 5xx from the service) may have
	// happened after the function started.
	return fmt.Errorf("%s: %w", prefix, err)
}

// isDialErr reports an error that happened before the request could
// reach the service: a failed connection or name lookup.
func isDialErr(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
