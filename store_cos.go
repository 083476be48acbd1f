//go:build !gale_slim || gale_ibm

package gale

import (
	"fmt"
	"strconv"

	"github.com/galeproject/gale/backends/ibm"
	"github.com/galeproject/gale/backends/objstore"
)

// IBM Cloud Object Storage as cos://bucket/prefix, configured by the store
// options cos.endpoint (required), cos.region, cos.api_key with
// cos.service_instance_id (and cos.auth_endpoint), or the HMAC keys
// cos.access_key_id and cos.secret_access_key, and cos.path_style.
func init() {
	registerStoreScheme("cos", "cos.", []string{"endpoint", "region", "api_key", "service_instance_id", "auth_endpoint", "access_key_id", "secret_access_key", "path_style"},
		func(opts map[string]string) (objstore.Opener, error) {
			cfg := ibm.COSConfig{
				Endpoint: opts["endpoint"], Region: opts["region"],
				APIKey: opts["api_key"], ServiceInstanceID: opts["service_instance_id"], AuthEndpoint: opts["auth_endpoint"],
				AccessKeyID: opts["access_key_id"], SecretAccessKey: opts["secret_access_key"],
			}
			if v, ok := opts["path_style"]; ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("gale: store option cos.path_style=%q is not true or false", v)
				}
				cfg.PathStyle = b
			}
			if cfg.Endpoint == "" {
				// Validated when a cos:// URL is opened, so that programs
				// that never use COS need no COS options.
				return ibm.COSOpener(cfg), nil
			}
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			return ibm.COSOpener(cfg), nil
		})
}
