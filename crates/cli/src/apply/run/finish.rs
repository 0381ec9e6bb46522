//! The end of a deploy: its report (layers, outcome, the critical path) and, when nothing
//! failed, the clean-up of what the deploy replaced.

use super::*;

impl Deploy<'_> {
    pub(super) async fn finish(mut self) -> Result<UpReport, EngineError> {
        let mut layers = Vec::new();
        for layer in &self.desired.layers {
            let services: Vec<ServiceReport> = layer
                .services
                .iter()
                .map(|spec| self.service_report(&self.services[&spec.name]))
                .collect();
            let first = services
                .iter()
                .filter_map(|s| s.started_after)
                .fold(f64::INFINITY, f64::min);
            let last = services
                .iter()
                .filter_map(|s| s.converged_after.or(s.healthy_after))
                .fold(0.0, f64::max);
            // A background step belongs to its service's layer: its failure is that layer's.
            let vault_failed_here = self.step_failed.contains(&layer.name);
            layers.push(LayerReport {
                name: layer.name.clone(),
                status: if vault_failed_here {
                    report::LayerStatus::Failed
                } else {
                    report::layer_status(&services)
                },
                seconds: if first.is_finite() {
                    (last - first).max(0.0)
                } else {
                    0.0
                },
                services,
                disabled: layer.disabled.clone(),
            });
        }
        let all: Vec<&ServiceReport> = layers.iter().flat_map(|l| &l.services).collect();
        let outcome = report::outcome(&all, !self.step_failed.is_empty());
        let critical_path = self
            .schedule
            .critical_path()
            .into_iter()
            .map(|(step, since, at)| PathStep {
                step: match step {
                    Step::Service(n) => n,
                    other => other.to_string(),
                },
                started_after: since,
                healthy_after: at,
            })
            .collect();
        let converged = all
            .iter()
            .filter_map(|s| s.converged_after)
            .fold(0.0, f64::max);
        let mut removed = Vec::new();
        let mut backup_schedule = None;
        if self.failures.is_empty() {
            // The scheduled backups' runner first: it mounts the live secrets' versions and
            // joins networks a prune may remove, so it follows the deploy before the clean-up.
            backup_schedule = self.backup_schedule().await;
            self.retire_kept().await;
            let (engine, desired, observed, p) =
                (self.engine, self.desired, self.observed, self.opts.progress);
            if self.opts.prune {
                removed.extend(cleanup::prune(engine, self.plan, p).await?);
            }
            removed
                .extend(cleanup::stale_configs(engine, desired, observed, self.opts.prune).await);
            removed.extend(
                cleanup::replaced_material(
                    engine,
                    desired,
                    observed,
                    &self.refs,
                    self.vault_current,
                    self.opts.prune,
                )
                .await,
            );
            self.say(format!("converged after {converged:.1}s"));
        }
        let failures = std::mem::take(&mut self.failures);
        // The failure the exit code speaks of: a failed task beats a timeout (as `outcome`).
        let failure = failures
            .iter()
            .find(|f| outcome != Outcome::Failed || !f.timed_out)
            .or(failures.first())
            .cloned();
        Ok(UpReport {
            outcome,
            namespace: self.desired.namespace.clone(),
            environment: self.desired.environment.clone(),
            deploy_id: self.deploy_id.clone(),
            seconds: self.now(),
            calls: self.engine.calls.snapshot(),
            layers,
            failure,
            failures,
            critical_path,
            removed,
            vault: self.vault_report.take(),
            provisioned: std::mem::take(&mut self.provisioned),
            routes: None,
            backup_schedule,
        })
    }

    /// Retires the credentials provisionings kept beside the new ones (S3: a rotated login's
    /// previous key), now that the consumers' old tasks are gone. One that fails is said and
    /// kept in the report; the old credential still works, the deploy stands, and the next
    /// `up` (no marker was made) provisions again and retires it.
    async fn retire_kept(&mut self) {
        let (desired, engine, image, progress) = (
            self.desired,
            self.engine,
            self.tool_image,
            self.opts.progress,
        );
        for i in 0..self.provisioned.len() {
            let Some(pending) = self.provisioned[i].retire.take() else {
                continue;
            };
            let pr = desired
                .provisions
                .iter()
                .find(|p| p.datastore == self.provisioned[i].datastore)
                .expect("a provisioning report only for a desired datastore");
            match provision_step::retire(engine, pr, &desired.namespace, image, pending, progress)
                .await
            {
                Ok(removed) => self.provisioned[i].retired = removed,
                Err(e) => {
                    self.say(format!(
                        "{}: the credentials kept for the roll are not retired yet (they still work; the next `sprocketctl up` retires them): {e}",
                        pr.step_name()
                    ));
                    self.provisioned[i].retire_error = Some(e);
                }
            }
        }
    }

    /// Makes, updates or removes the scheduled backups' runner on the namespace as it is now.
    async fn backup_schedule(&self) -> Option<crate::backup::schedule::ScheduleReport> {
        let r = match self.engine.observe(&self.desired.namespace).await {
            Ok(now) => {
                crate::backup::schedule::ensure(
                    self.engine,
                    &now,
                    self.platform,
                    &self.opts.spec_file,
                )
                .await
            }
            Err(e) => Some(crate::backup::schedule::ScheduleReport {
                action: "failed".into(),
                detail: format!("the namespace could not be read again: {e}"),
            }),
        };
        if let Some(b) = &r {
            self.say(format!("scheduled backups: {} ({})", b.detail, b.action));
        }
        r
    }

    fn service_report(&self, s: &Service) -> ServiceReport {
        let step = Step::Service(s.spec.name.clone());
        let (state, because) = match (s.ended, self.schedule.state(&step)) {
            (Some(end), _) => (end, None),
            (None, StepState::Healthy { .. }) => (ServiceState::Healthy, None),
            (None, StepState::Skipped { why }) => (ServiceState::Skipped, Some(why.clone())),
            (None, StepState::NotStarted { because }) => {
                (ServiceState::NotStarted, Some(because.clone()))
            }
            // Settled schedules hold neither; if one did, it was not started.
            (None, _) => (ServiceState::NotStarted, None),
        };
        ServiceReport {
            name: s.spec.name.clone(),
            action: if s.started_at.is_some() {
                s.action
            } else {
                s.planned
            },
            reason: s.reason,
            state,
            running: s.running,
            desired: s.want,
            started_after: s.started_at,
            healthy_after: s.healthy_at,
            converged_after: s.converged_at,
            not_started_because: because,
        }
    }
}
