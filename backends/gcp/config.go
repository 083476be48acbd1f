package gcp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/galeproject/gale/backends"
)

// Auth modes for Config.Auth.
const (
	// AuthAuto sends an identity token to every URL except loopback ones
	// (stand-ins), which get none.
	AuthAuto = "auto"
	// AuthIDToken always sends a Google identity token.
	AuthIDToken = "idtoken"
	// AuthNone never sends a token: functions deployed with
	// --allow-unauthenticated, or stand-ins.
	AuthNone = "none"
)

// Platform facts behind DefaultConfig and Traits.
//
// Table 3.1 of the thesis (Oct 2020) found Cloud Functions push-scheduled,
// gVisor sandboxes in microVMs, unbounded concurrency for HTTP triggers and
// a rate limit of 100M invocations per 100 s per region, with 128 MiB-2 GiB
// of memory and CPU not proportional to it. Today's Cloud Run functions
// (the v2 API this package deploys through) give 128 MiB-32 GiB with the
// vCPU share of vcpuTiers (https://cloud.google.com/functions/docs/configuring/memory),
// a default of 100 instances per function, HTTP timeouts up to 60 minutes
// and 32 MiB HTTP/1 requests (https://cloud.google.com/run/quotas).
const (
	// DefaultMemoryMiB is Cloud Run functions' default memory.
	DefaultMemoryMiB = 256
	// DefaultTimeout is Cloud Run functions' default request timeout.
	DefaultTimeout = 60 * time.Second
	// MaxTimeout is the longest HTTP function timeout.
	MaxTimeout = 60 * time.Minute
	// DefaultConcurrency is the default maximum instance count of a
	// function, and the default bound on invocations in flight.
	DefaultConcurrency = 100
	// MaxPayloadBytes is the largest HTTP/1 request Cloud Run accepts
	// (32 MiB); larger task inputs go through object storage.
	MaxPayloadBytes = 32 << 20
	// MaxMemoryMiB is the largest memory setting.
	MaxMemoryMiB = 32 << 10
)

// Prices, US dollars, Cloud Run request-based billing, tier 1 regions
// (https://cloud.google.com/run/pricing, which https://cloud.google.com/functions/pricing
// applies to Cloud Run functions): vCPU-second, GiB-second, request.
const (
	pricePerVCPUSecond = 0.000024
	pricePerGiBSecond  = 0.0000025
	pricePerRequest    = 0.40 / 1e6
)

// vcpuTiers maps memory settings to the vCPU share Cloud Run functions
// gives them (1 vCPU = 2.4 GHz). A setting between tiers gets the next
// tier's CPU.
var vcpuTiers = []struct {
	mib  int
	vcpu float64
}{
	{128, 0.083}, {256, 0.167}, {512, 0.333}, {1024, 0.583}, {2048, 1}, {4096, 2}, {8192, 2}, {16384, 4}, {32768, 8},
}

// VCPUs returns the vCPU share of a function with memMiB of memory.
func VCPUs(memMiB int) float64 {
	for _, t := range vcpuTiers {
		if memMiB <= t.mib {
			return t.vcpu
		}
	}
	return vcpuTiers[len(vcpuTiers)-1].vcpu
}

// Config configures a Backend. DefaultConfig gives the platform defaults;
// zero fields take them.
type Config struct {
	// Project is the Google Cloud project ID, e.g. "my-project".
	Project string
	// Region is the function's region, e.g. "europe-west1".
	Region string
	// Function is the function's name, e.g. "gale".
	Function string
	// URL is the function's HTTPS URL. Empty: derived as
	// https://REGION-PROJECT.cloudfunctions.net/FUNCTION.
	URL string
	// Endpoints, when set, replace URL: invocations go to the URL with
	// the fewest in flight. It is for stand-ins made of several Functions
	// Framework processes (one URL each), which the platform's front end
	// would otherwise hide behind one URL.
	Endpoints []string
	// MemoryMiB is the function's memory, for Traits and deploy. Default
	// 256.
	MemoryMiB int
	// Timeout is the function's timeout, for Traits and deploy; Invoke
	// waits that long plus a margin for a response. Default 60 s, at most
	// 60 minutes.
	Timeout time.Duration
	// Concurrency bounds invocations in flight from this client (and is
	// the deployed function's maximum instance count). Default 100.
	Concurrency int
	// Auth says when to send a Google identity token: AuthAuto (default),
	// AuthIDToken or AuthNone. TokenSource overrides it.
	Auth string
	// CredentialsFile is a service-account key file to mint identity
	// tokens from; empty uses Application Default Credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, the gcloud ADC file, the metadata
	// server).
	CredentialsFile string
	// TokenSource, if set, supplies the bearer tokens for every request
	// (e.g. impersonated credentials); Auth and CredentialsFile are then
	// ignored.
	TokenSource oauth2.TokenSource
	// MaxAttempts is how many times an invocation the platform rejects
	// (429, no available instance) is tried before Invoke gives up with
	// backends.ErrNotStarted. Default 6.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between tries
	// (backends.Backoff: jittered; a longer Retry-After is honoured up to
	// RetryMax). Defaults 200 ms and 10 s.
	RetryBase, RetryMax time.Duration
	// HTTPClient sends the invocations; default: a client of its own with
	// keep-alive connections, closed by Close.
	HTTPClient *http.Client
}

// DefaultConfig returns the platform defaults; Project, Region and
// Function (or URL, or Endpoints) are left to the caller.
func DefaultConfig() Config {
	return Config{
		MemoryMiB:   DefaultMemoryMiB,
		Timeout:     DefaultTimeout,
		Concurrency: DefaultConcurrency,
		Auth:        AuthAuto,
		MaxAttempts: 6,
		RetryBase:   200 * time.Millisecond,
		RetryMax:    10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MemoryMiB == 0 {
		c.MemoryMiB = d.MemoryMiB
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.Auth == "" {
		c.Auth = d.Auth
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.RetryBase == 0 {
		c.RetryBase = d.RetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = d.RetryMax
	}
	if c.URL == "" && len(c.Endpoints) == 0 && c.Project != "" && c.Region != "" && c.Function != "" {
		c.URL = FunctionURL(c.Project, c.Region, c.Function)
	}
	return c
}

// FunctionURL returns the cloudfunctions.net URL of an HTTP function.
func FunctionURL(project, region, function string) string {
	return "https://" + region + "-" + project + ".cloudfunctions.net/" + function
}

var (
	projectRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	regionRE   = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	functionRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]?$`)
)

// Validate reports every problem with c at once. Zero fields are valid
// where they have defaults; some way to reach the function (URL,
// Endpoints, or Project, Region and Function) is required.
func (c Config) Validate() error { return c.validate(true) }

// validate checks c; needTarget requires a way to reach the function.
func (c Config) validate(needTarget bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Project != "" && !projectRE.MatchString(c.Project) {
		bad("gcp.project %q is not a project ID (6-30 lower-case letters, digits and hyphens, e.g. \"my-project\")", c.Project)
	}
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		bad("gcp.region %q is not a region such as \"europe-west1\"", c.Region)
	}
	if c.Function != "" && !functionRE.MatchString(c.Function) {
		bad("gcp.function %q is not a function name (lower-case letters, digits and hyphens, starting with a letter, at most 63)", c.Function)
	}
	if needTarget && c.URL == "" && len(c.Endpoints) == 0 && (c.Project == "" || c.Region == "" || c.Function == "") {
		var missing []string
		for _, f := range []struct{ name, v string }{{"project", c.Project}, {"region", c.Region}, {"function", c.Function}} {
			if f.v == "" {
				missing = append(missing, "gcp."+f.name)
			}
		}
		bad("no function to invoke: set gcp.url, or %s (or gcp.endpoints for a stand-in)", strings.Join(missing, ", "))
	}
	if c.URL != "" && len(c.Endpoints) > 0 {
		bad("gcp.url and gcp.endpoints are exclusive: endpoints replace the function URL for stand-ins")
	}
	for _, u := range append([]string{c.URL}, c.Endpoints...) {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("gcp function URL %q is not an http:// or https:// URL", u)
		}
	}
	if c.MemoryMiB < 0 || c.MemoryMiB > MaxMemoryMiB || (c.MemoryMiB > 0 && c.MemoryMiB < 128) {
		bad("gcp.memory_mib %d is outside 128-%d MiB", c.MemoryMiB, MaxMemoryMiB)
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout || (c.Timeout > 0 && c.Timeout < time.Second) {
		bad("gcp.timeout %s is outside 1s-%s", c.Timeout, MaxTimeout)
	}
	if c.Concurrency < 0 {
		bad("gcp.concurrency %d is negative (want >= 1, or 0 for %d)", c.Concurrency, DefaultConcurrency)
	}
	switch c.Auth {
	case "", AuthAuto, AuthIDToken, AuthNone:
	default:
		bad("gcp.auth %q is not one of %s, %s, %s", c.Auth, AuthAuto, AuthIDToken, AuthNone)
	}
	if c.MaxAttempts < 0 {
		bad("gcp.max_attempts %d is negative", c.MaxAttempts)
	}
	if c.RetryBase < 0 || c.RetryMax < 0 || (c.RetryMax > 0 && c.RetryBase > c.RetryMax) {
		bad("gcp retry backoff %s..%s is not a valid range", c.RetryBase, c.RetryMax)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gcp: invalid config: %w", err)
	}
	return nil
}

// Traits describes the platform a Backend with c would use.
func (c Config) Traits() backends.Traits {
	c = c.withDefaults()
	gib := float64(c.MemoryMiB) / 1024
	vcpu := VCPUs(c.MemoryMiB)
	return backends.Traits{
		Name:             "gcp",
		MaxConcurrency:   c.Concurrency,
		MemoryMiB:        c.MemoryMiB,
		VCPUs:            vcpu,
		MaxPayloadBytes:  MaxPayloadBytes,
		Timeout:          c.Timeout,
		PricePerGBSecond: pricePerGiBSecond + vcpu*pricePerVCPUSecond/gib,
		PricePerRequest:  pricePerRequest,
	}
}

// isLoopback reports whether rawURL names a loopback host.
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
