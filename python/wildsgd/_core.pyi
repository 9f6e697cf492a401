"""Type stubs of the compiled extension (python/src/lib.rs)."""

from typing import Callable, Optional

def fit_linear(
    indptr: bytes,
    indices: bytes,
    data: bytes,
    n_features: int,
    y: bytes,
    params: str,
    callback: Optional[Callable[[str], None]] = None,
) -> tuple[list[float], float, list[str], str]: ...
def fit_mf(
    users: bytes,
    items: bytes,
    ratings: bytes,
    params: str,
    callback: Optional[Callable[[str], None]] = None,
) -> tuple["Mf", list[str], str]: ...

class Mf:
    def predict(self, users: bytes, items: bytes) -> list[float]: ...
    def recommend(self, user: int, n: int) -> Optional[list[tuple[int, float]]]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(bytes: bytes) -> "Mf": ...
