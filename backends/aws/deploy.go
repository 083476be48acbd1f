package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Runtime is the Lambda runtime Gale functions use: the OS-only runtime
// for custom runtimes, which executes the package's `bootstrap`.
const Runtime = types.RuntimeProvidedal2023

// BootstrapName is the executable a custom runtime runs.
const BootstrapName = "bootstrap"

// MaxDirectUploadBytes is the largest zip CreateFunction and
// UpdateFunctionCode accept inline (50 MB); larger packages must go
// through S3, which Deploy does not do.
const MaxDirectUploadBytes = 50 * 1000 * 1000

// zipEpoch is the modification time of every entry BootstrapZip writes:
// the earliest an MS-DOS timestamp can hold, so the archive's bytes depend
// on the binary only.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrNoRole is returned by Deploy when it must create the function and no
// execution role is configured.
var ErrNoRole = errors.New("aws: creating a Lambda function needs an execution role")

// BootstrapZip packages a linux executable as a Lambda deployment package:
// a zip holding one entry, "bootstrap", deflated, with Unix mode 0755 (the
// runtime executes it) and a fixed modification time. The same binary
// always gives the same bytes.
func BootstrapZip(binary []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: BootstrapName, Method: zip.Deflate, Modified: zipEpoch}
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

// DeployResult describes the deployed function.
type DeployResult struct {
	// FunctionARN is the function's ARN.
	FunctionARN string
	// Created is true if Deploy created the function, false if it
	// updated an existing one.
	Created bool
	// CodeSha256 is Lambda's base64 SHA-256 of the package.
	CodeSha256 string
	// State and LastUpdateStatus are the function's once Deploy returns:
	// "Active" and "Successful".
	State, LastUpdateStatus string
}

// DeployOptions tune Deploy's waits.
type DeployOptions struct {
	// MaxWait bounds the wait for the function to become Active or for an
	// update to finish. Default 5 minutes.
	MaxWait time.Duration
	// PollInterval is the least time between two state checks. Default
	// the SDK waiter's (1 s at first, growing).
	PollInterval time.Duration
}

// Deploy creates or updates cfg.Function with the deployment package zip
// (BootstrapZip's output) on the provided.al2023 runtime, with cfg's
// memory, timeout, architecture and role, and waits until the function is
// Active and its last update Successful. A new function needs cfg.Role
// (ErrNoRole). It also sets the function's asynchronous invocation config
// to zero retries, since Gale retries tasks itself.
func Deploy(ctx context.Context, cfg LambdaConfig, zipFile []byte, opts DeployOptions) (DeployResult, error) {
	if err := cfg.Validate(); err != nil {
		return DeployResult{}, err
	}
	cfg = cfg.withDefaults()
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Minute
	}
	if len(zipFile) > MaxDirectUploadBytes {
		return DeployResult{}, fmt.Errorf("aws: deploy %s: the package is %d bytes, over Lambda's %d-byte limit for direct uploads (strip the binary: -ldflags='-s -w')",
			cfg.Function, len(zipFile), MaxDirectUploadBytes)
	}
	awsCfg, err := loadAWSConfig(ctx, cfg.Region, cfg.Profile)
	if err != nil {
		return DeployResult{}, fmt.Errorf("aws: deploy %s: %w", cfg.Function, err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return DeployResult{}, fmt.Errorf("aws: deploy %s: no AWS region: set AWS_REGION or region in the backends.aws section of the config", cfg.Function)
		}
		awsCfg.Region = "us-east-1"
	}
	client := lambda.NewFromConfig(awsCfg, func(o *lambda.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(cfg.Endpoint)
		}
	})
	arch := types.ArchitectureX8664
	if cfg.Architecture == "arm64" {
		arch = types.ArchitectureArm64
	}
	mem := int32(cfg.MemoryMiB)
	timeout := int32((cfg.Timeout + time.Second - 1) / time.Second)
	fail := func(step string, err error) (DeployResult, error) {
		return DeployResult{}, fmt.Errorf("aws: deploy %s: %s: %w", cfg.Function, step, deployHint(err))
	}

	var res DeployResult
	_, err = client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: &cfg.Function})
	switch {
	case isCode(err, "ResourceNotFoundException"):
		if cfg.Role == "" {
			return DeployResult{}, fmt.Errorf("aws: deploy %s: %w: set role: arn:aws:iam::ACCOUNT:role/NAME in the backends.aws section (a role Lambda may assume, with AWSLambdaBasicExecutionRole and access to your buckets)", cfg.Function, ErrNoRole)
		}
		out, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName:  &cfg.Function,
			Runtime:       Runtime,
			Handler:       sdkaws.String(BootstrapName),
			Role:          &cfg.Role,
			Code:          &types.FunctionCode{ZipFile: zipFile},
			MemorySize:    &mem,
			Timeout:       &timeout,
			Architectures: []types.Architecture{arch},
			PackageType:   types.PackageTypeZip,
			Description:   sdkaws.String("Gale worker"),
			Publish:       false,
		})
		if err != nil {
			return fail("CreateFunction", err)
		}
		res.Created, res.FunctionARN, res.CodeSha256 = true, sdkaws.ToString(out.FunctionArn), sdkaws.ToString(out.CodeSha256)
		w := lambda.NewFunctionActiveV2Waiter(client, func(o *lambda.FunctionActiveV2WaiterOptions) {
			if opts.PollInterval > 0 {
				o.MinDelay = opts.PollInterval
			}
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: &cfg.Function}, opts.MaxWait); err != nil {
			return fail("waiting for the function to become Active", err)
		}
	case err != nil:
		return fail("GetFunction", err)
	default:
		out, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
			FunctionName: &cfg.Function, ZipFile: zipFile, Architectures: []types.Architecture{arch}})
		if err != nil {
			return fail("UpdateFunctionCode", err)
		}
		res.FunctionARN, res.CodeSha256 = sdkaws.ToString(out.FunctionArn), sdkaws.ToString(out.CodeSha256)
		if err := waitUpdated(ctx, client, cfg.Function, opts); err != nil {
			return fail("waiting for the code update", err)
		}
		in := &lambda.UpdateFunctionConfigurationInput{FunctionName: &cfg.Function, Runtime: Runtime,
			Handler: sdkaws.String(BootstrapName), MemorySize: &mem, Timeout: &timeout}
		if cfg.Role != "" {
			in.Role = &cfg.Role
		}
		if _, err := client.UpdateFunctionConfiguration(ctx, in); err != nil {
			return fail("UpdateFunctionConfiguration", err)
		}
		if err := waitUpdated(ctx, client, cfg.Function, opts); err != nil {
			return fail("waiting for the configuration update", err)
		}
	}
	if _, err := client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: &cfg.Function, MaximumRetryAttempts: sdkaws.Int32(0)}); err != nil {
		return fail("PutFunctionEventInvokeConfig", err)
	}
	fn, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: &cfg.Function})
	if err != nil {
		return fail("GetFunction", err)
	}
	if c := fn.Configuration; c != nil {
		res.State, res.LastUpdateStatus = string(c.State), string(c.LastUpdateStatus)
		if res.FunctionARN == "" {
			res.FunctionARN = sdkaws.ToString(c.FunctionArn)
		}
	}
	return res, nil
}

func waitUpdated(ctx context.Context, client *lambda.Client, name string, opts DeployOptions) error {
	w := lambda.NewFunctionUpdatedV2Waiter(client, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		if opts.PollInterval > 0 {
			o.MinDelay = opts.PollInterval
		}
	})
	return w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: &name}, opts.MaxWait)
}

// deployHint adds the fix to the errors deploying commonly meets.
func deployHint(err error) error {
	switch {
	case isCode(err, "AccessDeniedException") || httpStatus(err) == 403 && !isCode(err, "UnrecognizedClientException", "InvalidSignatureException"):
		return fmt.Errorf("access denied (these credentials need lambda:GetFunction, CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, PutFunctionEventInvokeConfig and iam:PassRole on the role): %w", err)
	case isCode(err, "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"):
		return fmt.Errorf("%w: Lambda rejected them (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the profile): %w", ErrCredentials, err)
	case isCode(err, "InvalidParameterValueException"):
		return fmt.Errorf("Lambda refused the function's settings (check role, memory_mib and timeout; a role created moments ago may need a few seconds before Lambda can assume it): %w", err)
	case isDialErr(err):
		return fmt.Errorf("cannot reach Lambda (check the region and the endpoint): %w", err)
	}
	return err
}
