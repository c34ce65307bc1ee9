CREATE TABLE `namespace_log_usage` (
	`namespace` text PRIMARY KEY NOT NULL,
	`bytes` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE `functions` ADD `log_limit_mb` integer DEFAULT 1024 NOT NULL;