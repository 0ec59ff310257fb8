BEGIN TRANSACTION;
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
INSERT INTO "events" VALUES(1,'2026-11-03 09:30:01.123456','info','pair_planned',1,'planned','{"notional": "1000.00", "legs": ["backpack", "hibachi"]}');
INSERT INTO "events" VALUES(2,'2026-11-03 09:30:07.123456','warning','partial_fill',3,'short leg filled 0.01 of 0.0153','{"filled": "0.01", "nested": {"ok": true}}');
INSERT INTO "events" VALUES(3,'2026-11-03 09:30:08.123456','critical','unknown_position',NULL,'a position no pair owns: SOL 7 on backpack','{}');
INSERT INTO "events" VALUES(4,'2026-11-03 09:30:09.123456','info','note',7,'ünïcödé ✓','{"list": [1, 2.5, null, "x"]}');
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
	CONSTRAINT uq_fills_venue_fill_id UNIQUE (venue, venue_fill_id), 
	FOREIGN KEY(order_id) REFERENCES orders (id)
);
INSERT INTO "fills" VALUES(1,1,'backpack','t-1','65432.1','0.01','0.21','USDC',0,'2026-11-03 09:30:06.123456');
INSERT INTO "fills" VALUES(2,1,'backpack','t-2','65432.1','0.0053','0.1171605','USDC',1,'2026-11-03 09:30:06.623456');
INSERT INTO "fills" VALUES(3,2,'hibachi','h-9','65440','0.01','0.2',NULL,NULL,'2026-11-03 09:30:07.123456');
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
INSERT INTO "hedge_pairs" VALUES(1,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'planned','2026-11-03 09:30:01.123456','2026-11-03 09:31:01.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(2,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'opening','2026-11-03 09:30:02.123456','2026-11-03 09:31:02.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(3,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'open','2026-11-03 09:30:03.123456','2026-11-03 09:31:03.123456','2026-11-03 09:30:10.123456','2026-11-03 10:30:10.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(4,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'closing','2026-11-03 09:30:04.123456','2026-11-03 09:31:04.123456','2026-11-03 09:30:11.123456','2026-11-03 10:30:11.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(5,'ETH','hibachi','backpack','3','1000.00','0.412',3600,'closed','2026-11-03 09:30:05.123456','2026-11-03 09:31:05.123456','2026-11-03 09:30:12.123456','2026-11-03 10:30:12.123456','2026-11-03 10:31:40.123456','duration elapsed','-1.234567890123456789','0.8812','0.000000000000000001','2000.12345678','12345678901234567890.5');
INSERT INTO "hedge_pairs" VALUES(6,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'failed','2026-11-03 09:30:06.123456','2026-11-03 09:31:06.123456',NULL,NULL,NULL,'short leg rejected: insufficient margin',NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(7,'SOL','backpack','hibachi','3','1000.00','7',3600,'naked','2026-11-03 09:30:07.123456','2026-11-03 09:31:07.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "hedge_pairs" VALUES(8,'BTC','backpack','hibachi','3','1000.00','0.0153',3600,'rolling_back','2026-11-03 09:30:08.123456','2026-11-03 09:31:08.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('client_id_namespace','k3v9q2x');
INSERT INTO "meta" VALUES('paused','true');
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
INSERT INTO "orders" VALUES(1,3,1,'backpack','3141592653','114477','open',1,'long','market',0,'0.0153',NULL,'filled','0.0153','65432.1','0.3271605','2026-11-03 09:30:05.123456','2026-11-03 09:30:06.123456',NULL);
INSERT INTO "orders" VALUES(2,3,2,'hibachi','k3v9q2x-3-o-1-s','0x5a','open',1,'short','limit',0,'0.0153','65440.000000000000000001','partially_filled','0.01','65440','0.2','2026-11-03 09:30:05.123456','2026-11-03 09:30:07.123456',NULL);
INSERT INTO "orders" VALUES(3,4,1,'backpack','2718281828',NULL,'close',2,'short','market',1,'0.0153',NULL,'in_flight','0',NULL,NULL,'2026-11-03 09:30:40.123456','2026-11-03 09:30:40.123456',NULL);
INSERT INTO "orders" VALUES(4,6,4,'hibachi','k3v9q2x-6-o-1-s',NULL,'open',1,'short','market',0,'1.5',NULL,'cancelled','0',NULL,NULL,'2026-11-03 09:30:50.123456','2026-11-03 09:30:51.123456','InsufficientMargin: ''margin'' "too low"; retry later');
INSERT INTO "orders" VALUES(5,8,4,'backpack','1618033988',NULL,'rollback',1,'short','market',1,'0.0153',NULL,'created','0',NULL,NULL,'2026-11-03 09:31:00.123456','2026-11-03 09:31:00.123456',NULL);
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
INSERT INTO "positions" VALUES(1,3,'backpack','BTC_USDC_PERP','long','0.0153','65432.1','65500.25',NULL,'1.04269500',NULL,'0.3271605','-0.01','3',NULL,'open','2026-11-03 09:30:20.123456');
INSERT INTO "positions" VALUES(2,3,'hibachi','BTC/USDT-P','short','0.0153','65440','65500.3',NULL,'-0.92259',NULL,'0.2','0.0125',NULL,'pos-77','open','2026-11-03 09:30:21.123456');
INSERT INTO "positions" VALUES(3,5,'hibachi','ETH/USDT-P','long','0.412','2400',NULL,'2398.5',NULL,'-0.618','0.44','0','3',NULL,'closed','2026-11-03 10:31:40.123456');
INSERT INTO "positions" VALUES(4,2,'backpack','BTC_USDC_PERP','long','0',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'pending','2026-11-03 09:30:02.123456');
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(1,'2026-11-03 09:30:00.123456');
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
INSERT INTO "snapshots" VALUES(1,'2026-11-03 09:30:30.123456',3,'65500.25','65500.3','1.04269500','-0.92259','0.33','0.3312','0.00000076');
INSERT INTO "snapshots" VALUES(2,'2026-11-03 09:30:31.123456',3,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX ix_hedge_pairs_state ON hedge_pairs (state);
CREATE INDEX ix_events_pair ON events (pair_id);
CREATE INDEX ix_snapshots_pair_ts ON snapshots (pair_id, ts);
CREATE INDEX ix_orders_pair ON orders (pair_id);
COMMIT;
