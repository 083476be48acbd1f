package gale

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/galeproject/gale/backends/objstore"
)

// SlimTag is the build tag of a slim build. A Gale program links every
// cloud backend by default (their SDKs make up most of its size: a minimal
// pipeline binary is about 88 MB, of which AWS's, Google's, Azure's and
// IBM's SDKs take 80); built with -tags gale_slim it links only the clouds
// whose own tags it adds as well (gale_aws, gale_gcp, gale_azure,
// gale_ibm). `gale deploy NAME` builds functions this way, with
// gale_NAME, so that deployment packages and cold starts stay small.
// The local and process backends, Glider, DSO and files are always linked.
const SlimTag = "gale_slim"

// cloudPart is one cloud's contribution to a Gale program: what a slim
// build without its tag lacks.
type cloudPart struct {
	name    string   // backend and worker mode
	tag     string   // the build tag that links it into a slim build
	schemes []string // object-store URL schemes it registers
	envs    []string // environment variables its platform starts workers with
}

// cloudParts lists the clouds that files under build constraints link
// (store_<scheme>.go, worker_<mode>.go: `!gale_slim || gale_<cloud>`).
// It is written out here, rather than registered by those files, so that a
// binary that lacks a cloud still knows what it lacks and says so; the
// worker_<mode>.go files detect their platform by its envs
// (platformStarted).
var cloudParts = []cloudPart{
	{name: "aws", tag: "gale_aws", schemes: []string{"s3"}, envs: []string{"AWS_LAMBDA_RUNTIME_API"}},
	{name: "azure", tag: "gale_azure", schemes: []string{"azblob"}, envs: []string{"FUNCTIONS_CUSTOMHANDLER_PORT"}},
	{name: "gcp", tag: "gale_gcp", schemes: []string{"gs"}, envs: []string{"FUNCTION_TARGET", "K_SERVICE"}},
	{name: "ibm", tag: "gale_ibm", schemes: []string{"cos"}, envs: []string{"__OW_API_HOST"}},
}

// LinkedClouds returns the cloud backends this binary links, in name
// order: all of them unless it was built with -tags gale_slim.
func LinkedClouds() []string {
	var names []string
	for _, c := range cloudParts {
		if _, ok := workerEntries[c.name]; ok {
			names = append(names, c.name)
		}
	}
	return names
}

// notLinked is the error for using cloud c in a binary that lacks it;
// what, if not "", is what needed it.
func notLinked(c cloudPart, what string) error {
	return &NotLinkedError{Cloud: c.name, Tag: c.tag, What: what}
}

// NotLinkedError is the error for using a cloud that this binary, built
// with -tags gale_slim and without the cloud's own tag, does not link.
type NotLinkedError struct {
	// Cloud is the cloud's backend name (aws, gcp, azure, ibm) and Tag
	// the build tag that links it (gale_aws, ...).
	Cloud, Tag string
	// What is what needed the cloud (the URL s3://b/k, store option
	// s3.region, ...), "" for its backend itself.
	What string
}

func (e *NotLinkedError) Error() string {
	fix := fmt.Sprintf("built with -tags %s and without %s: rebuild it with -tags %s,%s, or without %s",
		SlimTag, e.Tag, SlimTag, e.Tag, SlimTag)
	if e.What == "" {
		return fmt.Sprintf("gale: the %s backend is not linked into this binary, %s", e.Cloud, fix)
	}
	return fmt.Sprintf("gale: %s needs the %s backend, which is not linked into this binary, %s", e.What, e.Cloud, fix)
}

// missingCloudParts returns the clouds of cloudParts that this binary
// does not link.
func missingCloudParts() []cloudPart {
	var missing []cloudPart
	for _, c := range cloudParts {
		if _, ok := workerEntries[c.name]; !ok {
			missing = append(missing, c)
		}
	}
	return missing
}

// platformStarted returns the detect function of cloud name's worker
// mode: whether one of the environment variables its platform starts
// workers with is set.
func platformStarted(name string) func() bool {
	i := slices.IndexFunc(cloudParts, func(c cloudPart) bool { return c.name == name })
	if i < 0 {
		panic("gale: no cloud " + name + " in cloudParts")
	}
	envs := cloudParts[i].envs
	return func() bool {
		return slices.ContainsFunc(envs, func(e string) bool { return os.Getenv(e) != "" })
	}
}

// unlinkedWorkerMode returns the mode of a cloud this binary does not link
// whose platform started this process, or "".
func unlinkedWorkerMode() string {
	for _, c := range missingCloudParts() {
		if platformStarted(c.name)() {
			return c.name
		}
	}
	return ""
}

// unlinkedStoreOption returns the not-linked error for a store option
// key whose prefix belongs to a cloud this binary lacks, or nil.
func unlinkedStoreOption(key string) error {
	for _, c := range missingCloudParts() {
		for _, s := range c.schemes {
			if strings.HasPrefix(key, s+".") {
				return notLinked(c, fmt.Sprintf("store option %s", key))
			}
		}
	}
	return nil
}

// registerUnlinkedSchemes makes r open the URL schemes of clouds this
// binary lacks into an error that says how to link them, instead of
// calling the scheme unknown.
func registerUnlinkedSchemes(r *objstore.Resolver) {
	for _, c := range missingCloudParts() {
		for _, s := range c.schemes {
			r.Register(s, func(_ context.Context, u *url.URL) (objstore.Store, error) {
				return nil, notLinked(c, fmt.Sprintf("the URL %s", u.Redacted()))
			})
		}
	}
}

// CloudNotLinked returns, for the name of a cloud backend this binary does
// not link (it was built with -tags gale_slim and without the cloud's
// tag), an error that says how to link it; otherwise nil.
func CloudNotLinked(backend string) error {
	for _, c := range missingCloudParts() {
		if c.name == backend {
			return notLinked(c, "")
		}
	}
	return nil
}
