package azure

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/galeproject/gale/backends"
)

// Platform facts of the Azure Functions Consumption plan, from the thesis's
// Table 3.1 (as of October 2020): every instance has a fixed 1.5 GiB of
// memory and one CPU shared by all the invocations it runs at once, and a
// Function App scales to at most 200 instances (not raisable).
const (
	// MemoryMiB is an instance's memory: 1.5 GiB, not configurable.
	MemoryMiB = 1536
	// VCPUs is an instance's CPU, shared by its concurrent invocations.
	VCPUs = 1.0
	// MaxInstances is the most instances of one Function App.
	MaxInstances = 200
	// MaxPayloadBytes is the largest HTTP request the Functions host
	// accepts (its maxRequestLength, 100 MiB).
	MaxPayloadBytes = 100 << 20
	// HTTPTimeout is how long an HTTP-triggered invocation may take to
	// answer: Azure's load balancer ends the request after 230 seconds,
	// whatever the app's functionTimeout.
	HTTPTimeout = 230 * time.Second
)

// Consumption plan prices in US dollars, from the public price list
// (https://azure.microsoft.com/pricing/details/functions/, "Consumption
// plan": $0.000016 per GB-s of resource consumption and $0.20 per million
// executions, after a monthly free grant that Gale does not subtract).
// Memory is billed per instance-GB-second, rounded up to 128 MB steps.
const (
	PricePerGBSecond = 0.000016
	PricePerRequest  = 0.20 / 1e6
)

// KeyHeader is the header that carries a function key; KeyQuery is the
// query parameter that may carry it instead.
const (
	KeyHeader = "x-functions-key"
	KeyQuery  = "code"
)

// Config configures the Azure Functions backend. Fields left zero take
// the defaults DefaultConfig sets.
type Config struct {
	// App is the Function App's name; the function is reached at
	// https://APP.azurewebsites.net unless URL is set. One of App and URL
	// is required.
	App string
	// Function is the HTTP-triggered function that runs Gale tasks.
	// Default "gale".
	Function string
	// URL overrides the app's base URL, e.g. "http://127.0.0.1:7071" for
	// a local host. Invocations go to URL/RoutePrefix/Function.
	URL string
	// RoutePrefix is the app's HTTP route prefix (host.json
	// extensions.http.routePrefix). Default "api"; "/" means none.
	RoutePrefix string
	// Key is a function key (or the app's host key) for functions whose
	// authLevel is "function". Empty sends none, for anonymous functions.
	Key string
	// KeyInQuery sends the key as the "code" query parameter instead of
	// the x-functions-key header.
	KeyInQuery bool
	// Concurrency is the most invocations in flight at once. Default 200,
	// the app's instance limit (an instance may run many at once, sharing
	// its one CPU).
	Concurrency int
	// MaxAttempts is how many times a throttled invocation (HTTP 429 or
	// 503) is sent before it fails with backends.ErrNotStarted. Default 6.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between
	// throttled attempts (backends.Backoff: jittered; a longer
	// Retry-After is honoured up to RetryMax). Defaults 250 ms and 10 s.
	RetryBase, RetryMax time.Duration
	// Timeout bounds one invocation from request to response. Default
	// HTTPTimeout (230 s), Azure's own limit for HTTP triggers.
	Timeout time.Duration
}

// DefaultConfig returns the defaults: function "gale" under the "api"
// prefix, 200 invocations in flight, six attempts for throttled requests.
func DefaultConfig() Config {
	return Config{
		Function:    "gale",
		RoutePrefix: "api",
		Concurrency: MaxInstances,
		MaxAttempts: 6,
		RetryBase:   250 * time.Millisecond,
		RetryMax:    10 * time.Second,
		Timeout:     HTTPTimeout,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Function == "" {
		c.Function = d.Function
	}
	if c.RoutePrefix == "" {
		c.RoutePrefix = d.RoutePrefix
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
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
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// appName is what Azure accepts as a Function App name: 2 to 60 letters,
// digits and hyphens, not starting or ending with a hyphen.
var appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]$`)

// functionName is what Azure accepts as a function name (its folder in the
// app package): a letter, then letters, digits, '_' and '-'.
var functionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,127}$`)

// Validate reports every problem with c at once; the messages name the
// config keys of the backends.azure section.
func (c Config) Validate() error {
	var errs []error
	if c.App == "" && c.URL == "" {
		errs = append(errs, errors.New("set app (the Function App's name) or url (its base URL, e.g. http://127.0.0.1:7071 for a local host)"))
	}
	if c.App != "" && !appName.MatchString(c.App) {
		errs = append(errs, fmt.Errorf("app %q is not a Function App name (2-60 letters, digits and hyphens)", c.App))
	}
	if c.Function != "" && !functionName.MatchString(c.Function) {
		errs = append(errs, fmt.Errorf("function %q is not a function name (a letter, then letters, digits, '_' or '-')", c.Function))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("url %q is not an http:// or https:// base URL without a query", c.URL))
		}
	}
	if strings.ContainsAny(c.RoutePrefix, "?#") {
		errs = append(errs, fmt.Errorf("route_prefix %q must be a path", c.RoutePrefix))
	}
	if strings.ContainsAny(c.Key, " \r\n") {
		errs = append(errs, errors.New("key contains spaces or line breaks; paste the function key exactly as the portal or `az functionapp function keys list` shows it"))
	}
	if c.KeyInQuery && c.Key == "" {
		errs = append(errs, errors.New("key_in_query is set but key is empty"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative (want >= 1, or 0 for the default %d)", c.Concurrency, MaxInstances))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max_attempts %d is negative (want >= 1, or 0 for the default)", c.MaxAttempts))
	}
	for name, d := range map[string]time.Duration{"retry_base": c.RetryBase, "retry_max": c.RetryMax, "timeout": c.Timeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryBase > c.RetryMax {
		errs = append(errs, fmt.Errorf("retry_base %s exceeds retry_max %s", c.RetryBase, c.RetryMax))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("azure: invalid config (section backends.azure): %w", err)
	}
	return nil
}

// endpoint returns the function's invocation URL.
func (c Config) endpoint() string {
	base := c.URL
	if base == "" {
		base = "https://" + c.App + ".azurewebsites.net"
	}
	base = strings.TrimSuffix(base, "/")
	prefix := strings.Trim(c.RoutePrefix, "/")
	if prefix != "" {
		base += "/" + prefix
	}
	return base + "/" + url.PathEscape(c.Function)
}

// Traits returns the Consumption plan's traits as Table 3.1 and the price
// list give them, with MaxConcurrency the configured Concurrency.
func (c Config) Traits() backends.Traits {
	c = c.withDefaults()
	return backends.Traits{
		Name:             "azure",
		MaxConcurrency:   c.Concurrency,
		MemoryMiB:        MemoryMiB,
		VCPUs:            VCPUs,
		MaxPayloadBytes:  MaxPayloadBytes,
		Timeout:          min(c.Timeout, HTTPTimeout),
		PricePerGBSecond: PricePerGBSecond,
		PricePerRequest:  PricePerRequest,
	}
}
