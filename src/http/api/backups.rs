use poem::Body;
use poem::web::Data;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::control::backups::BackupError;
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};

#[derive(Default)]
pub struct BackupsApi;

#[derive(ApiResponse)]
enum BackupResponse {
    /// The snapshot: a redb file holding every table as one instant saw it. `hookplane restore` checks it and
    /// puts it in place on a stopped instance.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<Body>,
        /// The snapshot's size in bytes: a download of any other length is incomplete.
        #[oai(header = "X-Hookplane-Backup-Size")]
        u64,
        /// Deliveries in the snapshot.
        #[oai(header = "X-Hookplane-Backup-Deliveries")]
        u64,
        /// The storage schema the snapshot has; a build older than this cannot restore it.
        #[oai(header = "X-Hookplane-Backup-Schema")]
        u64,
    ),
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Busy => Problem::new(Kind::Conflict, e.to_string()).into(),
            BackupError::Store(s) => s.into(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Backups")]
impl BackupsApi {
    /// A consistent snapshot of the whole store, from one read transaction: ingest goes on while it is
    /// taken. One at a time (409 while another runs). Admins only; audited. `hookplane backup --to FILE`
    /// calls this and checks what it wrote.
    #[oai(path = "/v1/backup", method = "get", operation_id = "takeBackup")]
    async fn take(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
    ) -> Result<BackupResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        let taken = state.control.backups().take(by).await?;
        let body = Body::from_async_read(tokio::fs::File::from_std(taken.file));
        Ok(BackupResponse::Ok(Binary(body), taken.size, taken.snapshot.deliveries, taken.snapshot.schema))
    }
}
