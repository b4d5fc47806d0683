// Package ssm reads the Slack webhook URL from an AWS Systems Manager
// Parameter Store SecureString.
package ssm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// GetParameterAPI is the one Parameter Store call the notifier makes.
type GetParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ GetParameterAPI = (*ssm.Client)(nil)

// ErrNotURL means the parameter holds something other than an http(s) URL.
var ErrNotURL = errors.New("ssm: parameter value is not an http(s) URL")

// Webhook reads the parameter name, decrypted, and returns its value, which
// must be an http(s) URL. Errors never include the value: it is a secret.
func Webhook(ctx context.Context, api GetParameterAPI, name string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read ssm parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", fmt.Errorf("read ssm parameter %s: no value", name)
	}
	v := strings.TrimSpace(*out.Parameter.Value)
	if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("ssm parameter %s: %w", name, ErrNotURL)
	}
	return v, nil
}
