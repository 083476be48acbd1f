package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
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

// Lambda's documentation, quotas and messages write MB for 1,048,576 bytes
// (MiB). Its quota on a .zip deployment package is 50 MB zipped for a
// direct upload, and 250 MB unzipped, layers included, however the zip
// arrives; a larger zip must be uploaded to S3 first (FunctionCode's
// S3Bucket and S3Key), from a bucket in the function's region.

// MaxDirectUploadBytes is the largest zip Deploy sends inline in
// CreateFunction or UpdateFunctionCode: Lambda's 50 MiB, less 4 KiB. The zip
// travels base64-encoded in JSON and Lambda refuses a request of the base64
// of 50 MiB or more ("Request must be smaller than 69905067 bytes"), so the
// 4 KiB leave room for the request's other fields. Larger packages need a
// code location (DeployOptions.Code).
const MaxDirectUploadBytes = 50*MiB - 4<<10

// MaxUnzippedBytes is Lambda's limit on a package's unzipped size, layers
// included (250 MiB): Lambda refuses a package whose entries add up to
// this many bytes or more ("Unzipped size must be smaller than 262144000
// bytes"), however it is uploaded.
const MaxUnzippedBytes = 250 * MiB

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
	// CodeSha256 is Lambda's base64 SHA-256 of the package, which Deploy
	// checked against the package's own.
	CodeSha256 string
	// State and LastUpdateStatus are the function's once Deploy returns:
	// "Active" and "Successful".
	State, LastUpdateStatus string
	// CodeLocation is the s3://bucket/key URL Lambda took the package
	// from, or empty if the package went inline in the request.
	CodeLocation string
	// Uploaded is true if Deploy uploaded the package to CodeLocation,
	// false if an object with its content-addressed key was already there
	// (or the package went inline).
	Uploaded bool
}

// DeployOptions tune Deploy: where large packages go and how long it
// waits. The zero value deploys packages up to MaxDirectUploadBytes inline.
type DeployOptions struct {
	// MaxWait bounds the wait for the function to become Active or for an
	// update to finish. Default 5 minutes.
	MaxWait time.Duration
	// PollInterval is the least time between two state checks. Default
	// the SDK waiter's (1 s at first, growing).
	PollInterval time.Duration
	// Code is an s3://bucket/prefix URL of the code location: Deploy
	// uploads the package there under a content-addressed key,
	// prefix/FUNCTION-SHA256.zip (unless that object is already there),
	// and has Lambda take it from S3. With Code set every package goes
	// this way, however small, so that the path a package takes does not
	// change the day it outgrows MaxDirectUploadBytes, and a re-deploy of
	// an unchanged package uploads nothing. Empty: packages go inline and
	// larger ones fail with ErrPackageTooLarge. The bucket must be in the
	// function's region; the deploying credentials need s3:PutObject and
	// s3:GetObject on the prefix (Lambda reads the object with them).
	// Deploy deletes no package; a lifecycle rule on the prefix can.
	Code string
	// CodeS3 configures the client of the code location. An empty Region
	// takes the function's (LambdaConfig.Region or the SDK's chain).
	CodeS3 S3Config

	// directLimit replaces MaxDirectUploadBytes when positive (tests).
	directLimit int
}

// Validate reports every problem with o at once. Zero fields are valid.
func (o DeployOptions) Validate() error {
	var errs []error
	if o.MaxWait < 0 || o.PollInterval < 0 {
		errs = append(errs, errors.New("the deploy wait and poll interval must not be negative"))
	}
	if o.Code != "" {
		if _, _, err := parseS3URL(o.Code); err != nil {
			errs = append(errs, fmt.Errorf("code: %w", err))
		}
		if err := o.CodeS3.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("code: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws: invalid deploy options: %w", err)
	}
	return nil
}

// Deploy creates or updates cfg.Function with the deployment package zip
// (BootstrapZip's output) on the provided.al2023 runtime, with cfg's
// memory, timeout, architecture and role, and waits until the function is
// Active and its last update Successful. A new function needs cfg.Role
// (ErrNoRole). It also sets the function's asynchronous invocation config
// to zero retries, since Gale retries tasks itself.
//
// A package that unzips to MaxUnzippedBytes or more is refused
// (ErrPackageTooLarge) before anything is sent. With opts.Code set the
// package goes through S3 (see DeployOptions.Code); without it, a zip over
// MaxDirectUploadBytes is refused the same way. Deploy checks the
// CodeSha256 Lambda reports against the package's SHA-256.
func Deploy(ctx context.Context, cfg LambdaConfig, zipFile []byte, opts DeployOptions) (DeployResult, error) {
	if err := errors.Join(cfg.Validate(), opts.Validate()); err != nil {
		return DeployResult{}, err
	}
	cfg = cfg.withDefaults()
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Minute
	}
	if err := checkPackageSize(cfg.Function, zipFile, opts); err != nil {
		return DeployResult{}, err
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
	var code *codeStore
	if opts.Code != "" {
		if code, err = openCodeStore(ctx, cfg, awsCfg.Region, opts); err != nil {
			return DeployResult{}, err
		}
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
		if code != nil {
			if h := code.hint(err, awsCfg.Region); h != nil {
				return DeployResult{}, fmt.Errorf("aws: deploy %s: %s: %w", cfg.Function, step, h)
			}
		}
		return DeployResult{}, fmt.Errorf("aws: deploy %s: %s: %w", cfg.Function, step, deployHint(err))
	}
	sum := sha256.Sum256(zipFile)
	wantSha := base64.StdEncoding.EncodeToString(sum[:])

	var res DeployResult
	_, err = client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: &cfg.Function})
	create := isCode(err, "ResourceNotFoundException")
	switch {
	case create && cfg.Role == "":
		return DeployResult{}, fmt.Errorf("aws: deploy %s: %w: set role: arn:aws:iam::ACCOUNT:role/NAME in the backends.aws section (a role Lambda may assume, with AWSLambdaBasicExecutionRole and access to your buckets)", cfg.Function, ErrNoRole)
	case err != nil && !create:
		return fail("GetFunction", err)
	}
	// The package goes to S3 only once the function is known to be
	// deployable, so that a refused deploy uploads nothing.
	fc := &types.FunctionCode{ZipFile: zipFile}
	if code != nil {
		key, uploaded, err := code.put(ctx, cfg.Function, zipFile, sum)
		if err != nil {
			return DeployResult{}, fmt.Errorf("aws: deploy %s: %w", cfg.Function, err)
		}
		// Lambda wants the bucket's key; the store's keys are relative
		// to the prefix.
		fc = &types.FunctionCode{S3Bucket: sdkaws.String(code.Bucket()), S3Key: sdkaws.String(code.Prefix() + key)}
		res.CodeLocation, res.Uploaded = code.url(key), uploaded
	}

	if create {
		out, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName:  &cfg.Function,
			Runtime:       Runtime,
			Handler:       sdkaws.String(BootstrapName),
			Role:          &cfg.Role,
			Code:          fc,
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
		if err := checkCodeSha(res.CodeSha256, wantSha, res.CodeLocation); err != nil {
			return fail("CreateFunction", err)
		}
		w := lambda.NewFunctionActiveV2Waiter(client, func(o *lambda.FunctionActiveV2WaiterOptions) {
			if opts.PollInterval > 0 {
				o.MinDelay = opts.PollInterval
			}
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: &cfg.Function}, opts.MaxWait); err != nil {
			return fail("waiting for the function to become Active", err)
		}
	} else {
		out, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
			FunctionName: &cfg.Function, ZipFile: fc.ZipFile, S3Bucket: fc.S3Bucket, S3Key: fc.S3Key,
			Architectures: []types.Architecture{arch}})
		if err != nil {
			return fail("UpdateFunctionCode", err)
		}
		res.FunctionARN, res.CodeSha256 = sdkaws.ToString(out.FunctionArn), sdkaws.ToString(out.CodeSha256)
		if err := checkCodeSha(res.CodeSha256, wantSha, res.CodeLocation); err != nil {
			return fail("UpdateFunctionCode", err)
		}
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

// checkCodeSha compares the CodeSha256 Lambda reported with the package's:
// they differ if the object at the code location is not the package (or a
// request carried other bytes). An empty report is not checked.
func checkCodeSha(got, want, location string) error {
	if got == "" || got == want {
		return nil
	}
	if location == "" {
		return fmt.Errorf("Lambda reports the package's SHA-256 as %s, but the package sent is %s: deploy again", got, want)
	}
	return fmt.Errorf("Lambda reports the package's SHA-256 as %s, but the package is %s: the object %s is not this package (written by another tool?): delete it and deploy again", got, want, location)
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
