CREATE TABLE `credentials` (
	`secret_id` text PRIMARY KEY NOT NULL,
	`secret_key_encrypted` text NOT NULL,
	`namespaces` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer
);
