//go:build !gale_slim || gale_aws

package gale

import (
	"fmt"
	"strconv"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/objstore"
)

// S3 (and S3-compatible servers) as s3://bucket/prefix, configured by the
// store options s3.endpoint, s3.region, s3.path_style and s3.profile.
func init() {
	registerStoreScheme("s3", "s3.", []string{"endpoint", "region", "path_style", "profile"},
		func(opts map[string]string) (objstore.Opener, error) {
			cfg := aws.S3Config{Endpoint: opts["endpoint"], Region: opts["region"], Profile: opts["profile"]}
			if v, ok := opts["path_style"]; ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("gale: store option s3.path_style=%q is not true or false", v)
				}
				cfg.PathStyle = b
			}
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			return aws.S3Opener(cfg), nil
		})
}
