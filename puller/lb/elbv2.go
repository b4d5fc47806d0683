package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// ELBv2API is the part of the Elastic Load Balancing v2 client the ELBv2
// strategy uses (*elasticloadbalancingv2.Client implements it).
type ELBv2API interface {
	DeregisterTargets(ctx context.Context, in *elb.DeregisterTargetsInput, opts ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
	RegisterTargets(ctx context.Context, in *elb.RegisterTargetsInput, opts ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, opts ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
}

// MetadataAPI is the part of the IMDS client used to learn the instance id
// (*imds.Client implements it, with IMDSv2 session tokens).
type MetadataAPI interface {
	GetMetadata(ctx context.Context, in *imds.GetMetadataInput, opts ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

var (
	_ ELBv2API    = (*elb.Client)(nil)
	_ MetadataAPI = (*imds.Client)(nil)
)

// ELBv2Config addresses this instance in a target group.
type ELBv2Config struct {
	// TargetGroupARN is the target group. Required.
	TargetGroupARN string
	// Port of the target. Default 0: the target group's port.
	Port int32
	// InstanceID is the target's id. Default "": read from IMDSv2.
	InstanceID string
	// DrainTime is the longest wait for the target to leave the group (the
	// group's deregistration delay should not be longer). Default 30s.
	DrainTime time.Duration
	// HealthyTimeout is the longest wait for the re-registered target to
	// pass the group's health checks. Default 5m.
	HealthyTimeout time.Duration
	// Poll is the interval between DescribeTargetHealth calls. Default 5s.
	Poll time.Duration
	// Logger receives a warning when the drain time passes before the
	// target is deregistered. Default slog.Default().
	Logger *slog.Logger
}

// ELBv2 drains an EC2 instance from an ALB or NLB target group.
type ELBv2 struct {
	cfg  ELBv2Config
	api  ELBv2API
	meta MetadataAPI
	log  *slog.Logger

	mu sync.Mutex
	id string
}

// NewELBv2 validates cfg and returns the strategy; zero fields take their
// defaults. meta may be nil when cfg.InstanceID is set.
func NewELBv2(cfg ELBv2Config, api ELBv2API, meta MetadataAPI) (*ELBv2, error) {
	if !strings.HasPrefix(cfg.TargetGroupARN, "arn:") || !strings.Contains(cfg.TargetGroupARN, ":targetgroup/") {
		return nil, fmt.Errorf("elbv2 target group %q: not a target group ARN", cfg.TargetGroupARN)
	}
	if cfg.InstanceID == "" && meta == nil {
		return nil, errors.New("elbv2: no instance id and no instance metadata client")
	}
	if cfg.DrainTime == 0 {
		cfg.DrainTime = 30 * time.Second
	}
	if cfg.HealthyTimeout == 0 {
		cfg.HealthyTimeout = 5 * time.Minute
	}
	if cfg.Poll == 0 {
		cfg.Poll = 5 * time.Second
	}
	e := &ELBv2{cfg: cfg, api: api, meta: meta, log: cfg.Logger, id: cfg.InstanceID}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e, nil
}

// InstanceID returns the target's id, asking IMDSv2 the first time.
func (e *ELBv2) InstanceID(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id != "" {
		return e.id, nil
	}
	out, err := e.meta.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		return "", fmt.Errorf("instance id from IMDS: %w", err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 256))
	if err != nil {
		return "", fmt.Errorf("instance id from IMDS: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !strings.HasPrefix(id, "i-") {
		return "", fmt.Errorf("instance id from IMDS: %q is not an instance id", id)
	}
	e.id = id
	return id, nil
}

func (e *ELBv2) target(ctx context.Context) ([]types.TargetDescription, error) {
	id, err := e.InstanceID(ctx)
	if err != nil {
		return nil, err
	}
	t := types.TargetDescription{Id: aws.String(id)}
	if e.cfg.Port != 0 {
		t.Port = aws.Int32(e.cfg.Port)
	}
	return []types.TargetDescription{t}, nil
}

// Drain deregisters the instance and waits until the target group reports
// it unused (its deregistration delay over), or until DrainTime passes.
func (e *ELBv2) Drain(ctx context.Context) error {
	targets, err := e.target(ctx)
	if err != nil {
		return err
	}
	if _, err := e.api.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: &e.cfg.TargetGroupARN, Targets: targets}); err != nil {
		return fmt.Errorf("deregister %s from %s: %w", *targets[0].Id, e.cfg.TargetGroupARN, err)
	}
	w := elb.NewTargetDeregisteredWaiter(e.api, func(o *elb.TargetDeregisteredWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.cfg.Poll, e.cfg.Poll
	})
	err = w.Wait(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: &e.cfg.TargetGroupARN, Targets: targets}, e.cfg.DrainTime)
	var apiErr smithy.APIError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("drain %s: %w", *targets[0].Id, ctx.Err())
	case errors.As(err, &apiErr):
		return fmt.Errorf("drain %s from %s: %w", *targets[0].Id, e.cfg.TargetGroupARN, err)
	default: // the waiter's time ran out: the drain time has passed
		e.log.Warn("drain time passed before the target was deregistered", "target", *targets[0].Id,
			"target_group", e.cfg.TargetGroupARN, "drain_time", e.cfg.DrainTime)
		return nil
	}
}

// Restore registers the instance again and waits until the target group's
// health checks report it healthy.
func (e *ELBv2) Restore(ctx context.Context) error {
	targets, err := e.target(ctx)
	if err != nil {
		return err
	}
	if _, err := e.api.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: &e.cfg.TargetGroupARN, Targets: targets}); err != nil {
		return fmt.Errorf("register %s in %s: %w", *targets[0].Id, e.cfg.TargetGroupARN, err)
	}
	w := elb.NewTargetInServiceWaiter(e.api, func(o *elb.TargetInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.cfg.Poll, e.cfg.Poll
	})
	in := &elb.DescribeTargetHealthInput{TargetGroupArn: &e.cfg.TargetGroupARN, Targets: targets}
	if err := w.Wait(ctx, in, e.cfg.HealthyTimeout); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("restore %s: %w", *targets[0].Id, ctx.Err())
		}
		return fmt.Errorf("restore %s in %s: not healthy within %s: %w", *targets[0].Id, e.cfg.TargetGroupARN, e.cfg.HealthyTimeout, err)
	}
	return nil
}
