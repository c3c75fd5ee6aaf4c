//! SQL over the lake through DataFusion: every table registered as a Hive-partitioned listing
//! table (so filters on `sensor`, `date` and `hour` prune directories before any file is opened),
//! with a memory limit past which operators spill to disk rather than fail.

use std::sync::Arc;

use cynex_model::schema::partition_type;
use cynex_model::Table;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder, UInt32Builder};
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt32Type};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::lake::LockGuard;
use crate::{Lake, Result};

#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory for query operators; past it they spill to disk (or fail if they cannot).
    pub memory_limit: usize,
    pub target_partitions: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self { memory_limit: 2 << 30, target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()) }
    }
}

/// A DataFusion session over a consistent view of the lake: it holds the lake's shared lock, so
/// no commit, compaction or prune changes the files underneath a running query.
pub struct QuerySession {
    ctx: SessionContext,
    _guard: LockGuard,
}

impl QuerySession {
    pub fn open(lake: &Lake, opts: &QueryOptions) -> Result<Self> {
        let guard = lake.lock_shared()?;
        let mut config =
            SessionConfig::new().with_information_schema(true).with_target_partitions(opts.target_partitions.max(1));
        config.options_mut().execution.parquet.pushdown_filters = true;
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(opts.memory_limit))).build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        for t in Table::ALL {
            let dir = lake.root().join(t.name());
            let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
            let parts: Vec<(String, DataType)> =
                t.partition_cols().iter().map(|c| (c.to_string(), partition_type(c))).collect();
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(parts);
            let cfg = ListingTableConfig::new(url).with_listing_options(options).with_schema(t.schema());
            ctx.register_table(t.name(), Arc::new(ListingTable::try_new(cfg)?))?;
        }
        register_udfs(&ctx);
        Ok(QuerySession { ctx, _guard: guard })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Run one SQL statement and collect its result.
    pub async fn sql(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.ctx.sql(sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// Run one SQL statement and return its rows as JSON objects (column name → value, as
    /// Arrow's JSON writer renders them; nulls omitted).
    pub async fn json_rows(&self, sql: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        let (_, batches) = self.sql(sql).await?;
        let mut buf = Vec::new();
        {
            let mut jw = datafusion::arrow::json::ArrayWriter::new(&mut buf);
            for b in &batches {
                jw.write(b)?;
            }
            jw.finish()?;
        }
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&buf).map_err(|e| crate::Error::Internal(format!("reading query rows as JSON: {e}")))
    }
}

/// `ip4_str(u32) -> text` and `ip4(text) -> u32`, so analysts can read and write addresses in
/// the lake's integer form.
fn register_udfs(ctx: &SessionContext) {
    let to_str = create_udf(
        "ip4_str",
        vec![DataType::UInt32],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let a = arrays[0].as_primitive::<UInt32Type>();
            let mut b = StringBuilder::with_capacity(a.len(), a.len() * 15);
            for v in a.iter() {
                b.append_option(v.map(|x| std::net::Ipv4Addr::from(x).to_string()));
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish()) as ArrayRef))
        }),
    );
    let from_str = create_udf(
        "ip4",
        vec![DataType::Utf8],
        DataType::UInt32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let a = arrays[0].as_string::<i32>();
            let mut b = UInt32Builder::with_capacity(a.len());
            for v in a.iter() {
                b.append_option(v.and_then(|s| s.parse::<std::net::Ipv4Addr>().ok()).map(u32::from));
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish()) as ArrayRef))
        }),
    );
    ctx.register_udf(to_str);
    ctx.register_udf(from_str);
}
