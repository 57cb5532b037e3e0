// The translation unit that builds the precompiled torch header every module library reuses.
