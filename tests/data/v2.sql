BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0002');
CREATE TABLE events (
	id INTEGER NOT NULL, 
	ts DATETIME NOT NULL, 
	level VARCHAR(8) NOT NULL, 
	kind VARCHAR(48) NOT NULL, 
	pair_id INTEGER, 
	message TEXT NOT NULL, 
	data JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(pair_id) REFERENCES hedge_pairs (id)
);
INSERT INTO "events" VALUES(1,'2026-12-10 14:05:01.654321','info','pair_planned',1,'planned','{"notional": "750.50", "legs": ["hibachi", "backpack"]}');
INSERT INTO "events" VALUES(2,'2026-12-10 14:05:05.654321','info','pair_opening',3,'opening','{"mid": {"hibachi": "2401.4", "backpack": "2401.6"}}');
INSERT INTO "events" VALUES(3,'2026-12-10 14:05:08.654321','critical','limit_tripped',NULL,'max_drawdown_usd: -51.2 beyond 50','{}');
INSERT INTO "events" VALUES(4,'2026-12-10 14:05:09.654321','warning','note',7,'ünïcödé ✓','{"list": [1, 2.5, null, "x"], "nested": {"ok": false}}');
CREATE TABLE fills (
	id INTEGER NOT NULL, 
	order_id INTEGER NOT NULL, 
	venue VARCHAR(16) NOT NULL, 
	venue_fill_id VARCHAR(64) NOT NULL, 
	price VARCHAR(64) NOT NULL, 
	quantity VARCHAR(64) NOT NULL, 
	fee VARCHAR(64) NOT NULL, 
	fee_asset VARCHAR(16), 
	is_maker BOOLEAN, 
	ts DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_fills_order_fill UNIQUE (venue, order_id, venue_fill_id), 
	FOREIGN KEY(order_id) REFERENCES orders (id)
);
INSERT INTO "fills" VALUES(1,2,'backpack','77','2401.75','0.2','0.08','USDC',1,'2026-12-10 14:05:06.654321');
INSERT INTO "fills" VALUES(2,2,'backpack','78','2401.75','0.1127','0.04','USDC',0,'2026-12-10 14:05:06.904321');
INSERT INTO "fills" VALUES(3,3,'backpack','77','2399.25','0.3127','0.31','USDC',0,'2026-12-10 14:36:35.654321');
INSERT INTO "fills" VALUES(4,1,'hibachi','h-1','2401.5','0.3127','0.15',NULL,NULL,'2026-12-10 14:05:06.654321');
CREATE TABLE hedge_pairs (
	id INTEGER NOT NULL, 
	market VARCHAR(32) NOT NULL, 
	long_venue VARCHAR(16) NOT NULL, 
	short_venue VARCHAR(16) NOT NULL, 
	leverage VARCHAR(64) NOT NULL, 
	notional VARCHAR(64) NOT NULL, 
	quantity VARCHAR(64) NOT NULL, 
	duration_s INTEGER NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	opened_at DATETIME, 
	expires_at DATETIME, 
	closed_at DATETIME, 
	close_reason TEXT, 
	realized_pnl VARCHAR(64), 
	fees VARCHAR(64), 
	funding VARCHAR(64), 
	volume VARCHAR(64), 
	points VARCHAR(64), 
	PRIMARY KEY (id)
);
INSERT INTO "hedge_pairs" VALUES(1,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'planned','2026-12-10 14:05:01.654321','2026-12-10 14:05:31.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(2,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'opening','2026-12-10 14:05:02.654321','2026-12-10 14:05:32.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(3,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'open','2026-12-10 14:05:03.654321','2026-12-10 14:05:33.654321','2026-12-10 14:05:10.654321','2026-12-10 14:35:10.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(4,'BTC','hibachi','backpack','2','750.50','0.3127',1800,'closing','2026-12-10 14:05:04.654321','2026-12-10 14:05:34.654321','2026-12-10 14:05:11.654321','2026-12-10 14:35:11.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(5,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'closed','2026-12-10 14:05:05.654321','2026-12-10 14:05:35.654321','2026-12-10 14:05:12.654321','2026-12-10 14:35:12.654321','2026-12-10 14:36:40.654321','duration elapsed','0.000000000000000001','0.61','-0.25','1501.987654321','98765432109876543210.25');
INSERT INTO "hedge_pairs" VALUES(6,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'failed','2026-12-10 14:05:06.654321','2026-12-10 14:05:36.654321',NULL,NULL,NULL,'long leg rejected: ''min size'' "0.5"',NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(7,'SOL','hibachi','backpack','2','750.50','12.5',1800,'naked','2026-12-10 14:05:07.654321','2026-12-10 14:05:37.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(8,'ETH','hibachi','backpack','2','750.50','0.3127',1800,'rolling_back','2026-12-10 14:05:08.654321','2026-12-10 14:05:38.654321',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('client_id_namespace','m7q2z9w');
INSERT INTO "meta" VALUES('trading.pause','{"reason": "maintenance", "by": "operator"}');
INSERT INTO "meta" VALUES('limits.max_drawdown_usd','{"figure": "-51.2", "bound": "50"}');
INSERT INTO "meta" VALUES('limits.high_water','{"equity": "10250.75"}');
INSERT INTO "meta" VALUES('engine.heartbeat','2026-12-10T14:06:00.654321+00:00');
CREATE TABLE orders (
	id INTEGER NOT NULL, 
	pair_id INTEGER NOT NULL, 
	position_id INTEGER NOT NULL, 
	venue VARCHAR(16) NOT NULL, 
	client_id VARCHAR(40) NOT NULL, 
	venue_order_id VARCHAR(64), 
	purpose VARCHAR(16) NOT NULL, 
	attempt INTEGER NOT NULL, 
	side VARCHAR(8) NOT NULL, 
	type VARCHAR(16) NOT NULL, 
	reduce_only BOOLEAN NOT NULL, 
	quantity VARCHAR(64) NOT NULL, 
	price VARCHAR(64), 
	status VARCHAR(16) NOT NULL, 
	filled_quantity VARCHAR(64) NOT NULL, 
	avg_price VARCHAR(64), 
	fee VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_orders_venue_client_id UNIQUE (venue, client_id), 
	FOREIGN KEY(pair_id) REFERENCES hedge_pairs (id), 
	FOREIGN KEY(position_id) REFERENCES positions (id)
);
INSERT INTO "orders" VALUES(1,3,1,'hibachi','m7q2z9w-3-o-0-l','0x9c','open',0,'long','market',0,'0.3127',NULL,'filled','0.3127','2401.5','0.15','2026-12-10 14:05:05.654321','2026-12-10 14:05:06.654321',NULL);
INSERT INTO "orders" VALUES(2,3,2,'backpack','4001002003','220011','open',0,'short','limit',0,'0.3127','2401.750000000000000001','filled','0.3127','2401.75','0.12','2026-12-10 14:05:05.654321','2026-12-10 14:05:07.654321',NULL);
INSERT INTO "orders" VALUES(3,5,3,'backpack','4001002004',NULL,'close',1,'long','market',1,'0.3127',NULL,'filled','0.3127','2399.25','0.31','2026-12-10 14:36:30.654321','2026-12-10 14:36:35.654321',NULL);
INSERT INTO "orders" VALUES(4,6,4,'hibachi','m7q2z9w-6-o-0-l',NULL,'open',0,'long','market',0,'0.5',NULL,'rejected','0',NULL,NULL,'2026-12-10 14:05:50.654321','2026-12-10 14:05:51.654321','MinSize: ünïcödé ✓');
INSERT INTO "orders" VALUES(5,8,4,'hibachi','m7q2z9w-8-r-0-s',NULL,'rollback',0,'short','market',1,'0.3127',NULL,'in_flight','0',NULL,NULL,'2026-12-10 14:06:00.654321','2026-12-10 14:06:00.654321',NULL);
CREATE TABLE positions (
	id INTEGER NOT NULL, 
	pair_id INTEGER NOT NULL, 
	venue VARCHAR(16) NOT NULL, 
	symbol VARCHAR(32) NOT NULL, 
	side VARCHAR(8) NOT NULL, 
	quantity VARCHAR(64) NOT NULL, 
	entry_price VARCHAR(64), 
	mark_price VARCHAR(64), 
	exit_price VARCHAR(64), 
	unrealized_pnl VARCHAR(64), 
	realized_pnl VARCHAR(64), 
	fees VARCHAR(64), 
	funding VARCHAR(64), 
	leverage_set VARCHAR(64), 
	venue_position_id VARCHAR(64), 
	state VARCHAR(16) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_positions_pair_venue UNIQUE (pair_id, venue), 
	FOREIGN KEY(pair_id) REFERENCES hedge_pairs (id)
);
INSERT INTO "positions" VALUES(1,3,'hibachi','ETH/USDT-P','long','0.3127','2401.5','2402',NULL,'0.15635',NULL,'0.15','0.001',NULL,'pos-12','open','2026-12-10 14:05:20.654321');
INSERT INTO "positions" VALUES(2,3,'backpack','ETH_USDC_PERP','short','0.3127','2401.75','2402.1',NULL,'-0.109445',NULL,'0.12','-0.001','2',NULL,'open','2026-12-10 14:05:21.654321');
INSERT INTO "positions" VALUES(3,5,'backpack','ETH_USDC_PERP','short','0.3127','2400',NULL,'2399.25',NULL,'0.234525','0.31','0','2',NULL,'closed','2026-12-10 14:36:40.654321');
INSERT INTO "positions" VALUES(4,2,'hibachi','ETH/USDT-P','long','0',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'pending','2026-12-10 14:05:02.654321');
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(2,'2026-12-10 14:05:00.654321');
CREATE TABLE snapshots (
	id INTEGER NOT NULL, 
	ts DATETIME NOT NULL, 
	pair_id INTEGER NOT NULL, 
	long_mark VARCHAR(64), 
	short_mark VARCHAR(64), 
	long_upnl VARCHAR(64), 
	short_upnl VARCHAR(64), 
	long_collateral_ratio VARCHAR(64), 
	short_collateral_ratio VARCHAR(64), 
	divergence VARCHAR(64), 
	PRIMARY KEY (id), 
	FOREIGN KEY(pair_id) REFERENCES hedge_pairs (id)
);
INSERT INTO "snapshots" VALUES(1,'2026-12-10 14:05:30.654321',3,'2402','2402.1','0.15635','-0.109445','0.5','0.4998','0.0000416');
INSERT INTO "snapshots" VALUES(2,'2026-12-10 14:05:31.654321',4,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX ix_hedge_pairs_state ON hedge_pairs (state);
CREATE INDEX ix_events_pair ON events (pair_id);
CREATE INDEX ix_snapshots_pair_ts ON snapshots (pair_id, ts);
CREATE INDEX ix_orders_pair ON orders (pair_id);
COMMIT;
